// The native protocol driver: speaks Massa protocol v1 (proto/massa/protocol/v1) to a user
// function over gRPC, on TCP ("host:port") or a Unix domain socket ("unix:/path").
#pragma once

#include <chrono>
#include <string>

#include "massa/protocol/user_function.h"

namespace massa {

struct NativeDriverOptions {
  std::string address;                             // "unix:/run/fn.sock" or "127.0.0.1:8080"
  std::chrono::milliseconds call_timeout{30'000};  // per command, bounded by its deadline
  int max_message_bytes = 4 << 20;
};

UserFunctionPtr NewNativeDriver(const NativeDriverOptions& options);

}  // namespace massa

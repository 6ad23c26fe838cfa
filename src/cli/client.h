// Client subcommands of the `massa` binary: call any method of a running massa with a JSON
// request, and list what it serves. They learn the services from massa's admin API, so they
// need no .proto files.
#pragma once

#include <chrono>
#include <string>

namespace massa::cli {

struct ClientOptions {
  std::string address = "127.0.0.1:9000";
  std::chrono::milliseconds timeout{10'000};
};

// `massa call SERVICE/METHOD [JSON]`: prints the reply as JSON on stdout and returns 0, or
// prints "ERROR <CODE>: <message>" on stderr and returns 1.
int Call(const ClientOptions& options, const std::string& method, const std::string& json);

// `massa services`: prints each service with its kind and methods.
int ListServices(const ClientOptions& options);

}  // namespace massa::cli

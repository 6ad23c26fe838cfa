// File: massa/sdk/status.h
//
// Status codes and the Status of SDK calls that can fail (Function::Start).
//
// Example:
//   massa::sdk::Status status = function.Start("unix:/tmp/f.sock");
//   if (!status.ok()) std::cerr << status.message() << "\n";
#pragma once

#include <string>
#include <utility>

namespace massa::sdk {

// The canonical gRPC status codes (google.rpc.Code); the code of a Failure.
enum class Code : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

// OK, or an error code with a message saying what went wrong.
class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace massa::sdk

// File: massa/sdk/result.h
//
// What a command handler returns: a reply of the method's output type, a Failure, or a
// Forward that hands the command to another method.
//
// Example:
//   massa::sdk::Result<Cart> GetCart(massa::sdk::ValueContext<Cart>& ctx, const GetShoppingCart&) {
//     if (!ctx.has_state()) return massa::sdk::Fail(massa::sdk::Code::kNotFound, "no such cart");
//     return ctx.state();  // the reply
//   }
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "massa/sdk/status.h"

namespace massa::sdk {

// The command was rejected. The caller receives `code` and `message`; nothing the command
// produced (state change, side effects) is applied. Use a non-OK code: Massa reports
// kOk as UNKNOWN.
struct Failure {
  Code code = Code::kFailedPrecondition;
  std::string message;
};

// A Failure with code FAILED_PRECONDITION (the command is not valid in the current state).
inline Failure Fail(std::string message) {
  return Failure{Code::kFailedPrecondition, std::move(message)};
}

// A Failure with the given code, e.g. Fail(Code::kInvalidArgument, "quantity must be positive").
inline Failure Fail(Code code, std::string message) { return Failure{code, std::move(message)}; }

// Hands the command to another method; that method's reply becomes this command's reply, so
// its output type must be the output type of the forwarding method. Made by
// CommandContext::Forward, which checks the target when its service is linked into the binary.
class Forward {
 public:
  const std::string& service_name() const { return service_name_; }  // fully qualified
  const std::string& method() const { return method_; }              // bare method name
  const std::string& payload_type() const { return payload_type_; }  // full message name
  const std::string& payload() const { return payload_; }            // serialized message
  // A pipe (CommandContext::Pipe): `payload` is this command's reply, the target's request.
  bool pipe() const { return pipe_; }

 private:
  friend class CommandContext;
  Forward(std::string service_name, std::string method, std::string payload_type,
          std::string payload, bool pipe = false)
      : service_name_(std::move(service_name)),
        method_(std::move(method)),
        payload_type_(std::move(payload_type)),
        payload_(std::move(payload)),
        pipe_(pipe) {}

  std::string service_name_;
  std::string method_;
  std::string payload_type_;
  std::string payload_;
  bool pipe_ = false;
};

// The outcome of a handler of a method whose output message is T: exactly one of a reply,
// a Failure or a Forward. Converts implicitly from each, so a handler can `return cart;`,
// `return Fail(...);` or `return ctx.Forward(...);`.
template <typename T>
class Result {
 public:
  Result(T reply) : value_(std::in_place_index<0>, std::move(reply)) {}  // NOLINT: implicit
  Result(Failure failure) : value_(std::in_place_index<1>, std::move(failure)) {}  // NOLINT
  Result(Forward forward) : value_(std::in_place_index<2>, std::move(forward)) {}  // NOLINT

  bool is_reply() const { return value_.index() == 0; }
  bool is_failure() const { return value_.index() == 1; }
  bool is_forward() const { return value_.index() == 2; }

  // Each accessor requires the matching is_*() to be true (else std::bad_variant_access).
  const T& reply() const& { return std::get<0>(value_); }
  T&& reply() && { return std::get<0>(std::move(value_)); }
  const Failure& failure() const { return std::get<1>(value_); }
  const Forward& forward() const { return std::get<2>(value_); }

 private:
  std::variant<T, Failure, Forward> value_;
};

}  // namespace massa::sdk

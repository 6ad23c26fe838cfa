// File: massa/entity/dispatcher.h
//
// Where commands go: the ingresses hand every Command to a Dispatcher, and so do handlers'
// effects (forwards, pipes, side effects). The router implements it; in a cluster it forwards
// to the entity's owner, so effects need no special case for remote targets.
#pragma once

#include "absl/functional/any_invocable.h"
#include "massa/entity/command.h"

namespace massa {

// Called exactly once with the command's result. Must not block.
using ResultCallback = absl::AnyInvocable<void(CommandResult) &&>;

// Thread-safe; Dispatch never blocks.
class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  virtual void Dispatch(Command command, ResultCallback done) = 0;
};

}  // namespace massa

// Runs what a command's outcome asks of other services once its state is durable: the
// synchronous side effects, one after another, then the reply, or the forward or pipe whose
// reply becomes the command's. (Asynchronous side effects go through the outbox, outbox.h.)
//
// Under an idempotency key every call made here carries a key derived from it (idempotency.h):
// "s<i>" for the i-th synchronous side effect, "f" for the forward or pipe. A replayed request
// makes the same calls under the same keys, so their entity targets apply them once.
#pragma once

#include <string_view>

#include "massa/entity/command.h"
#include "massa/entity/dispatcher.h"
#include "massa/protocol/user_function.h"

namespace massa {

// The command for an effect of `cause`: its metadata (with the effect's after it), one hop
// further, under `idempotency_key`.
Command EffectCommand(const Command& cause, std::string service, std::string method,
                      std::string payload, const Metadata& metadata,
                      std::string idempotency_key);

// Makes `call`, a call the function made while handling `caller`'s command, a command of that
// command's chain: its deadline, one hop further, the caller's entities waiting in its chain
// (the router refuses a cycle), and under the caller's key a key derived from it ("c<index>").
void PrepareCall(const CallerInfo& caller, Command& call);

// Runs `outcome` (not failed) of `cause`, a command of entity (entity_type, key) (for an
// action: (service, "")), and calls `done` with the command's result.
void RunEffects(Dispatcher& dispatcher, const Command& cause, std::string_view entity_type,
                std::string_view key, Outcome outcome, ResultCallback done);

}  // namespace massa

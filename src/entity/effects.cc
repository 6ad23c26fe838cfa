#include "entity/effects.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "entity/idempotency.h"

namespace massa {
namespace {

// Runs synchronous side effects one after another, then `then` with the first error (or OK).
struct SyncEffects {
  Dispatcher* dispatcher;
  std::vector<Command> commands;
  size_t next = 0;
  absl::AnyInvocable<void(absl::Status) &&> then;

  static void Run(std::shared_ptr<SyncEffects> self) {
    if (self->next == self->commands.size()) {
      std::move(self->then)(absl::OkStatus());
      return;
    }
    Command command = std::move(self->commands[self->next++]);
    std::string target = absl::StrCat(command.service, "/", command.method);
    self->dispatcher->Dispatch(std::move(command), [self, target](CommandResult result) mutable {
      if (!result.status.ok()) {
        std::move(self->then)(absl::Status(
            result.status.code(),
            absl::StrCat("side effect ", target, " failed: ", result.status.message())));
        return;
      }
      Run(std::move(self));
    });
  }
};

}  // namespace

Command EffectCommand(const Command& cause, std::string service, std::string method,
                      std::string payload, const Metadata& metadata,
                      std::string idempotency_key) {
  Command command;
  command.service = std::move(service);
  command.method = std::move(method);
  command.payload = std::move(payload);
  command.metadata = cause.metadata;
  command.metadata.insert(command.metadata.end(), metadata.begin(), metadata.end());
  command.hops = cause.hops + 1;
  command.idempotency_key = std::move(idempotency_key);
  command.call_chain = cause.call_chain;  // whoever waits for the cause waits for this too
  return command;
}

void PrepareCall(const CallerInfo& caller, Command& call) {
  call.deadline = caller.deadline;
  call.hops = caller.hops + 1;
  call.call_chain = caller.call_chain;
  if (!caller.idempotency_key.empty()) {
    call.idempotency_key = idempotency::Derive(caller.source, "", caller.idempotency_key,
                                               absl::StrCat("c", caller.index));
  }
}

void RunEffects(Dispatcher& dispatcher, const Command& cause, std::string_view entity_type,
                std::string_view key, Outcome outcome, ResultCallback done) {
  const auto derive = [&](std::string_view what) {
    return cause.idempotency_key.empty()
               ? std::string()
               : idempotency::Derive(entity_type, key, cause.idempotency_key, what);
  };
  auto sync = std::make_shared<SyncEffects>();
  sync->dispatcher = &dispatcher;
  size_t index = 0;
  for (SideEffect& effect : outcome.side_effects) {
    if (!effect.synchronous) continue;
    Command command = EffectCommand(cause, std::move(effect.service), std::move(effect.method),
                                    std::move(effect.payload), effect.metadata,
                                    derive(absl::StrCat("s", index++)));
    command.deadline = cause.deadline;
    sync->commands.push_back(std::move(command));
  }
  // The forward or pipe, built now while `cause` is at hand.
  std::optional<Command> next;
  if (auto* forward = std::get_if<Forward>(&outcome.result)) {
    next = EffectCommand(cause, std::move(forward->service), std::move(forward->method),
                         std::move(forward->payload), forward->metadata, derive("f"));
  } else if (auto* pipe = std::get_if<Pipe>(&outcome.result)) {
    next = EffectCommand(cause, std::move(pipe->service), std::move(pipe->method),
                         std::move(pipe->payload), pipe->metadata, derive("f"));
  }
  if (next.has_value()) next->deadline = cause.deadline;
  sync->then = [&dispatcher, next = std::move(next), result = std::move(outcome.result),
                done = std::move(done)](absl::Status effects) mutable {
    if (!effects.ok()) {
      std::move(done)(CommandResult{std::move(effects), {}, {}});
      return;
    }
    if (next.has_value()) {
      dispatcher.Dispatch(*std::move(next), std::move(done));
      return;
    }
    if (auto* reply = std::get_if<Reply>(&result)) {
      std::move(done)(
          CommandResult{absl::OkStatus(), std::move(reply->payload), std::move(reply->metadata)});
    } else {
      std::move(done)(CommandResult{std::get<absl::Status>(std::move(result)), {}, {}});
    }
  };
  SyncEffects::Run(std::move(sync));
}

}  // namespace massa

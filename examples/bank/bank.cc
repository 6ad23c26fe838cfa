#include "bank.h"

#include <string>
#include <utility>

#include "example/bank/bank.pb.h"

namespace example::bank {
namespace {

using massa::sdk::ActionContext;
using massa::sdk::Code;
using massa::sdk::Fail;
using massa::sdk::Result;
using massa::sdk::ValueContext;

constexpr char kAccounts[] = "example.bank.Accounts";
constexpr size_t kRecent = 20;

Balance BalanceOf(const std::string& account_id, const Account& account) {
  Balance out;
  out.set_account_id(account_id);
  out.set_balance_cents(account.balance_cents());
  out.set_frozen(account.frozen());
  return out;
}

Result<Balance> Deposit(ValueContext<Account>& ctx, const Amount& request) {
  if (request.amount_cents() <= 0) return Fail(Code::kInvalidArgument, "amount must be positive");
  if (ctx.state().frozen() && !request.refund()) {
    return Fail("account " + request.account_id() + " is frozen; it takes no deposits");
  }
  Account& account = ctx.mutable_state();
  account.set_open(true);
  account.set_balance_cents(account.balance_cents() + request.amount_cents());
  account.set_operations(account.operations() + 1);
  return BalanceOf(request.account_id(), account);
}

Result<Balance> Withdraw(ValueContext<Account>& ctx, const Amount& request) {
  if (request.amount_cents() <= 0) return Fail(Code::kInvalidArgument, "amount must be positive");
  if (!ctx.state().open()) return Fail(Code::kNotFound, "no account " + request.account_id());
  if (ctx.state().balance_cents() < request.amount_cents()) {
    return Fail("account " + request.account_id() + " has " +
                std::to_string(ctx.state().balance_cents()) + " cents, less than " +
                std::to_string(request.amount_cents()));
  }
  Account& account = ctx.mutable_state();
  account.set_balance_cents(account.balance_cents() - request.amount_cents());
  account.set_operations(account.operations() + 1);
  return BalanceOf(request.account_id(), account);
}

// Failures that may pass (the callee or Massa was unreachable, the deadline passed): the
// transfer fails and may be retried, rather than being recorded as refused.
bool Transient(Code code) {
  return code == Code::kUnavailable || code == Code::kDeadlineExceeded ||
         code == Code::kAborted || code == Code::kResourceExhausted || code == Code::kInternal ||
         code == Code::kUnknown;
}

Result<TransferReply> Transfer(ActionContext& ctx, const TransferRequest& request) {
  if (request.amount_cents() <= 0) return Fail(Code::kInvalidArgument, "amount must be positive");
  if (request.from_account().empty() || request.to_account().empty() ||
      request.from_account() == request.to_account()) {
    return Fail(Code::kInvalidArgument, "a transfer needs two different accounts");
  }
  AuditEntry audit;
  audit.set_transfer_id(request.transfer_id());
  audit.set_from_account(request.from_account());
  audit.set_to_account(request.to_account());
  audit.set_amount_cents(request.amount_cents());
  Amount amount;
  amount.set_amount_cents(request.amount_cents());
  amount.set_transfer_id(request.transfer_id());

  TransferReply reply;
  reply.set_transfer_id(request.transfer_id());
  const auto refused = [&](std::string reason) -> Result<TransferReply> {
    audit.set_reason(reason);
    ctx.Publish(kAuditChannel, audit);
    reply.set_reason(std::move(reason));
    return reply;
  };

  amount.set_account_id(request.from_account());
  Result<Balance> withdrawn = ctx.Call<Balance>(kAccounts, "Withdraw", amount);
  if (withdrawn.is_failure()) {
    if (Transient(withdrawn.failure().code)) return withdrawn.failure();  // nothing moved
    return refused("withdrawal refused: " + withdrawn.failure().message);
  }
  amount.set_account_id(request.to_account());
  Result<Balance> deposited = ctx.Call<Balance>(kAccounts, "Deposit", amount);
  if (deposited.is_failure()) {
    // Compensate: the money goes back where it came from. (Should that fail too, the transfer
    // fails and its caller retries it under the same idempotency key: the withdrawal and the
    // deposits are applied once, and the give-back is tried again.)
    amount.set_account_id(request.from_account());
    amount.set_refund(true);
    Result<Balance> returned = ctx.Call<Balance>(kAccounts, "Deposit", amount);
    if (returned.is_failure()) return returned.failure();
    return refused("deposit refused: " + deposited.failure().message +
                   "; the money was given back");
  }
  audit.set_completed(true);
  ctx.Publish(kAuditChannel, audit);
  reply.set_completed(true);
  reply.set_from_balance_cents(withdrawn.reply().balance_cents());
  reply.set_to_balance_cents(deposited.reply().balance_cents());
  return reply;
}

Result<AuditLog> Record(ValueContext<AuditLog>& ctx, const AuditEntry& entry) {
  AuditLog& log = ctx.mutable_state();
  if (entry.completed()) {
    log.set_completed(log.completed() + 1);
    log.set_moved_cents(log.moved_cents() + entry.amount_cents());
  } else {
    log.set_failed(log.failed() + 1);
  }
  *log.add_recent() = entry;
  if (static_cast<size_t>(log.recent_size()) > kRecent) {
    log.mutable_recent()->DeleteSubrange(0, log.recent_size() - static_cast<int>(kRecent));
  }
  return log;
}

}  // namespace

void RegisterBank(massa::sdk::Function& function) {
  function.AddValueEntity<Account>(kAccounts)
      .Handle("Deposit", Deposit)
      .Handle("Withdraw", Withdraw)
      .Handle("SetFrozen",
              [](ValueContext<Account>& ctx, const Freeze& request) -> Result<Balance> {
                ctx.mutable_state().set_frozen(request.frozen());
                return BalanceOf(request.account_id(), ctx.state());
              })
      .Handle("GetBalance", [](ValueContext<Account>& ctx, const GetAccount& request)
                                -> Result<Balance> {
        if (!ctx.state().open()) return Fail(Code::kNotFound, "no account " + request.account_id());
        return BalanceOf(request.account_id(), ctx.state());
      });
  function.AddAction("example.bank.Bank").Handle("Transfer", Transfer);
  function
      .AddValueEntity<AuditLog>("example.bank.Auditor", massa::sdk::EntityOptions{
                                                            .actor_name = kAuditor})
      .Handle("Record", Record)
      .Handle("GetLog", [](ValueContext<AuditLog>& ctx, const GetAuditLog&) -> Result<AuditLog> {
        return ctx.state();
      })
      .Subscribe(kAuditChannel, "Record");
}

}  // namespace example::bank

// The bank example through the real binaries: transfers call two accounts from inside their
// handler, give the money back when the deposit fails, and publish every outcome to the audit
// channel, which the auditor (a named actor) records once per transfer.
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "example/bank/bank.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "integration/process.h"

namespace massa::testing {
namespace {

namespace bank = ::example::bank;
using ::testing::HasSubstr;

constexpr auto kStartTimeout = std::chrono::seconds(30);

class BankTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string socket = "unix:" + dir_.path() + "/function.sock";
    function_ = std::make_unique<Process>(
        std::vector<std::string>{BANK_FUNCTION_BIN, "--listen", socket, "--handler-threads", "16"},
        dir_.path() + "/function.log");
    ASSERT_TRUE(function_->WaitForLine("listening on", kStartTimeout)) << function_->log();
    std::optional<MassaEndpoints> endpoints =
        StartMassa(massa_, socket, dir_.path() + "/data", dir_.path() + "/massa.log");
    ASSERT_TRUE(endpoints.has_value()) << massa_->log();
    endpoints_ = *endpoints;
    auto channel = grpc::CreateChannel(endpoints->grpc_address, grpc::InsecureChannelCredentials());
    accounts_ = bank::Accounts::NewStub(channel);
    bank_ = bank::Bank::NewStub(channel);
    auditor_ = bank::Auditor::NewStub(channel);
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return context;
  }

  void Deposit(const std::string& account, int64_t cents) {
    bank::Amount amount;
    amount.set_account_id(account);
    amount.set_amount_cents(cents);
    bank::Balance balance;
    grpc::Status status = accounts_->Deposit(Context().get(), amount, &balance);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  int64_t BalanceOf(const std::string& account) {
    bank::GetAccount get;
    get.set_account_id(account);
    bank::Balance balance;
    grpc::Status status = accounts_->GetBalance(Context().get(), get, &balance);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return balance.balance_cents();
  }

  bank::AuditLog Log() {
    bank::AuditLog log;
    grpc::Status status = auditor_->GetLog(Context().get(), bank::GetAuditLog(), &log);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return log;
  }

  // Polls the audit log until it holds `transfers` entries, for up to 15 s.
  bank::AuditLog LogOf(int64_t transfers) {
    bank::AuditLog log;
    for (int i = 0; i < 300; ++i) {
      log = Log();
      if (log.completed() + log.failed() >= transfers) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return log;
  }

  TempDir dir_;
  std::unique_ptr<Process> function_;
  std::unique_ptr<Process> massa_;
  MassaEndpoints endpoints_;
  std::unique_ptr<bank::Accounts::Stub> accounts_;
  std::unique_ptr<bank::Bank::Stub> bank_;
  std::unique_ptr<bank::Auditor::Stub> auditor_;
};

TEST_F(BankTest, ConcurrentTransfersKeepTheTotalAndAreEachAuditedOnce) {
  constexpr int kAccounts = 8;
  constexpr int kTransfers = 64;
  constexpr int64_t kOpening = 1000;
  for (int i = 0; i < kAccounts; ++i) Deposit("acc" + std::to_string(i), kOpening);

  std::vector<std::future<bank::TransferReply>> transfers;
  for (int i = 0; i < kTransfers; ++i) {
    transfers.push_back(std::async(std::launch::async, [this, i] {
      bank::TransferRequest request;
      request.set_transfer_id("t" + std::to_string(i));
      request.set_from_account("acc" + std::to_string(i % kAccounts));
      request.set_to_account("acc" + std::to_string((i * 3 + 1) % kAccounts));
      if (request.from_account() == request.to_account()) {
        request.set_to_account("acc" + std::to_string((i + 1) % kAccounts));
      }
      request.set_amount_cents(100 + 150 * (i % 7));  // some exceed what is left: refused
      bank::TransferReply reply;
      grpc::Status status = bank_->Transfer(Context().get(), request, &reply);
      EXPECT_TRUE(status.ok()) << status.error_message();
      return reply;
    }));
  }
  int completed = 0;
  int64_t moved = 0;
  for (int i = 0; i < kTransfers; ++i) {
    bank::TransferReply reply = transfers[i].get();
    if (reply.completed()) {
      ++completed;
      moved += 100 + 150 * (i % 7);
    } else {
      EXPECT_THAT(reply.reason(), HasSubstr("refused")) << reply.transfer_id();
    }
  }
  EXPECT_GT(completed, 0);
  int64_t total = 0;
  for (int i = 0; i < kAccounts; ++i) {
    const int64_t balance = BalanceOf("acc" + std::to_string(i));
    EXPECT_GE(balance, 0);
    total += balance;
  }
  EXPECT_EQ(total, kAccounts * kOpening);

  bank::AuditLog log = LogOf(kTransfers);
  EXPECT_EQ(log.completed(), completed);
  EXPECT_EQ(log.failed(), kTransfers - completed);
  EXPECT_EQ(log.moved_cents(), moved);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // a second delivery would show
  EXPECT_EQ(Log().completed() + Log().failed(), kTransfers);
}

TEST_F(BankTest, AFailedDepositIsCompensatedAndAudited) {
  Deposit("alice", 500);
  bank::Freeze freeze;
  freeze.set_account_id("bob");
  freeze.set_frozen(true);
  bank::Balance balance;
  ASSERT_TRUE(accounts_->SetFrozen(Context().get(), freeze, &balance).ok());
  bank::TransferRequest request;
  request.set_transfer_id("t1");
  request.set_from_account("alice");
  request.set_to_account("bob");
  request.set_amount_cents(200);
  bank::TransferReply reply;
  ASSERT_TRUE(bank_->Transfer(Context().get(), request, &reply).ok());
  EXPECT_FALSE(reply.completed());
  EXPECT_THAT(reply.reason(), HasSubstr("frozen"));
  EXPECT_THAT(reply.reason(), HasSubstr("given back"));
  EXPECT_EQ(BalanceOf("alice"), 500);
  bank::AuditLog log = LogOf(1);
  EXPECT_EQ(log.failed(), 1);
  ASSERT_EQ(log.recent_size(), 1);
  EXPECT_THAT(log.recent(0).reason(), HasSubstr("frozen"));
}

TEST_F(BankTest, ARetriedTransferUnderItsIdempotencyKeyMovesTheMoneyOnce) {
  Deposit("alice", 500);
  Deposit("bob", 1);
  bank::TransferRequest request;
  request.set_transfer_id("t1");
  request.set_from_account("alice");
  request.set_to_account("bob");
  request.set_amount_cents(200);
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto context = Context();
    context->AddMetadata("idempotency-key", "transfer-t1");
    bank::TransferReply reply;
    grpc::Status status = bank_->Transfer(context.get(), request, &reply);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(reply.completed());
    EXPECT_EQ(reply.from_balance_cents(), 300) << "attempt " << attempt;
  }
  EXPECT_EQ(BalanceOf("alice"), 300);
  EXPECT_EQ(BalanceOf("bob"), 201);
  bank::AuditLog log = LogOf(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  log = Log();
  EXPECT_EQ(log.completed(), 1) << "each retry publishes under the same derived key";
}

TEST_F(BankTest, OverHttp) {
  HttpResult opened = HttpCall(endpoints_.http_port, "POST", "/accounts/carol:deposit",
                               R"({"amountCents":"900"})");
  ASSERT_EQ(opened.status, 200) << opened.body;
  HttpResult moved = HttpCall(endpoints_.http_port, "POST", "/transfers",
                              R"({"transferId":"h1","fromAccount":"carol","toAccount":"dave",)"
                              R"("amountCents":"400"})");
  ASSERT_EQ(moved.status, 200) << moved.body;
  EXPECT_THAT(moved.body, HasSubstr("\"completed\":true"));
  HttpResult short_of_money = HttpCall(endpoints_.http_port, "POST", "/transfers",
                                       R"({"transferId":"h2","fromAccount":"carol",)"
                                       R"("toAccount":"dave","amountCents":"4000"})");
  ASSERT_EQ(short_of_money.status, 200) << short_of_money.body;
  EXPECT_THAT(short_of_money.body, HasSubstr("less than 4000"));
  HttpResult bad = HttpCall(endpoints_.http_port, "POST", "/transfers",
                            R"({"transferId":"h3","fromAccount":"carol","toAccount":"carol",)"
                            R"("amountCents":"1"})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  HttpResult dave = HttpCall(endpoints_.http_port, "GET", "/accounts/dave");
  EXPECT_THAT(dave.body, HasSubstr("\"balanceCents\":\"400\""));
  LogOf(2);
  HttpResult audit = HttpCall(endpoints_.http_port, "GET", "/audit");
  EXPECT_THAT(audit.body, HasSubstr("\"completed\":\"1\""));
  EXPECT_THAT(audit.body, HasSubstr("\"failed\":\"1\""));
}

}  // namespace
}  // namespace massa::testing

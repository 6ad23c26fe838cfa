// Idempotency keys: taking the key from metadata (and refusing bad ones), derived keys, and the
// stored record of a result.
#include "entity/idempotency.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace massa::idempotency {
namespace {

using ::testing::HasSubstr;

Command WithMetadata(Metadata metadata) {
  Command command;
  command.metadata = std::move(metadata);
  return command;
}

TEST(IdempotencyTest, TheKeyMovesFromMetadataToTheCommand) {
  Command command = WithMetadata({{"x-trace", "1"}, {"idempotency-key", "order-7"}});
  ASSERT_TRUE(TakeKey(command).ok());
  EXPECT_EQ(command.idempotency_key, "order-7");
  EXPECT_EQ(command.metadata, (Metadata{{"x-trace", "1"}})) << "never passed on as metadata";
  Command none = WithMetadata({{"x-trace", "1"}});
  ASSERT_TRUE(TakeKey(none).ok());
  EXPECT_EQ(none.idempotency_key, "");
}

TEST(IdempotencyTest, AKeyAlreadySetWinsAndTheEntryIsDropped) {
  Command command = WithMetadata({{"idempotency-key", "from-the-caller"}});
  command.idempotency_key = "derived";
  ASSERT_TRUE(TakeKey(command).ok());
  EXPECT_EQ(command.idempotency_key, "derived");
  EXPECT_TRUE(command.metadata.empty());
}

TEST(IdempotencyTest, BadKeysAreInvalidArgumentNamingTheHeader) {
  const std::string limit(kMaxKeyBytes, 'k');
  Command longest = WithMetadata({{"idempotency-key", limit}});
  EXPECT_TRUE(TakeKey(longest).ok());
  struct Case {
    Metadata metadata;
    const char* expected;
  } cases[] = {
      {{{"idempotency-key", limit + "k"}}, "idempotency-key is 257 bytes long; at most 256"},
      {{{"idempotency-key", ""}}, "idempotency-key is empty"},
      {{{"idempotency-key", "a\nb"}}, "not printable ASCII"},
      {{{"idempotency-key", "a"}, {"idempotency-key", "b"}}, "given 2 times"},
  };
  for (Case& c : cases) {
    Command command = WithMetadata(c.metadata);
    absl::Status status = TakeKey(command);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.expected));
  }
}

TEST(IdempotencyTest, DerivedKeysDependOnTheSourceEntityAndWhatFor) {
  const std::string a = Derive("cart", "c1", "k", "s0");
  EXPECT_EQ(a, Derive("cart", "c1", "k", "s0"));
  EXPECT_NE(a, Derive("cart", "c2", "k", "s0")) << "two entities, one client key";
  EXPECT_NE(a, Derive("order", "c1", "k", "s0"));
  EXPECT_NE(a, Derive("cart", "c1", "k", "s1"));
  EXPECT_NE(a, Derive("cart", "c1k", "", "s0")) << "parts are length-prefixed";
  EXPECT_EQ(a.find('k'), std::string::npos) << "the caller's key is not in it: " << a;
  EXPECT_LE(a.size(), kMaxKeyBytes);
}

TEST(IdempotencyTest, RequestHashesTellRequestsApart) {
  EXPECT_EQ(RequestHash("s", "m", "p").size(), 16u);
  EXPECT_EQ(RequestHash("s", "m", "p"), RequestHash("s", "m", "p"));
  EXPECT_NE(RequestHash("s", "m", "p"), RequestHash("s", "m", "q"));
  EXPECT_NE(RequestHash("s", "m", "p"), RequestHash("s", "n", "p"));
  EXPECT_NE(RequestHash("s", "mp", ""), RequestHash("s", "m", "p"));
}

TEST(IdempotencyTest, RecordsKeepTheResultAndTheSynchronousEffects) {
  Outcome reply;
  reply.result = Reply{"payload", {{"x", "1"}}};
  reply.side_effects = {SideEffect{"s", "Sync", "a", true, {}},
                        SideEffect{"s", "Async", "b", false, {}}};
  absl::StatusOr<StoredResult> stored = Decode(Encode("hash", reply, 5));
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->request_hash, "hash");
  ASSERT_TRUE(std::holds_alternative<Reply>(stored->outcome.result));
  EXPECT_EQ(std::get<Reply>(stored->outcome.result).payload, "payload");
  EXPECT_EQ(std::get<Reply>(stored->outcome.result).metadata, (Metadata{{"x", "1"}}));
  ASSERT_EQ(stored->outcome.side_effects.size(), 1u) << "asynchronous ones are in the outbox";
  EXPECT_EQ(stored->outcome.side_effects[0].method, "Sync");

  Outcome failure;
  failure.result = absl::FailedPreconditionError("already paid");
  stored = Decode(Encode("hash", failure, 5));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(std::get<absl::Status>(stored->outcome.result),
            absl::FailedPreconditionError("already paid"));

  Outcome forward;
  forward.result = Forward{"svc", "Method", "body", {}};
  stored = Decode(Encode("hash", forward, 5));
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(std::holds_alternative<Forward>(stored->outcome.result));
  EXPECT_EQ(std::get<Forward>(stored->outcome.result).method, "Method");
  Outcome pipe;
  pipe.result = Pipe{"svc", "Method", "body", {}};
  EXPECT_TRUE(std::holds_alternative<Pipe>(Decode(Encode("h", pipe, 5))->outcome.result));

  EXPECT_EQ(Decode("garbage").status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace massa::idempotency

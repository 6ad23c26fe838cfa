// The function's side of the session transport (sdk/cpp/src/session.h), driven as Massa drives
// it: a Session.Connect stream with an open frame, then commands, many per message.
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "example/shoppingcart/shoppingcart.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "massa/protocol/v1/protocol.grpc.pb.h"
#include "massa/sdk/function.h"
#include "test_function.h"

namespace massa::sdk::testing {
namespace {

namespace v1 = massa::protocol::v1;
namespace cart = ::example::shoppingcart;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kFront[] = "example.shoppingcart.CartFront";

// ValidateItem echoes the item after sleeping `quantity` milliseconds (so that commands
// handled on several threads finish in another order than they came).
void RegisterSleepy(Function& function, std::atomic<int>* running, std::atomic<int>* most) {
  function.AddAction(kFront).Handle<cart::LineItem, cart::LineItem>(
      "ValidateItem", [running, most](ActionContext&, const cart::LineItem& item) -> Result<cart::LineItem> {
        const int now = ++*running;
        int seen = most->load();
        while (now > seen && !most->compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(item.quantity()));
        --*running;
        return item;
      });
}

v1::ProxyFrame Open(unsigned major = 1, unsigned minor = 1) {
  v1::ProxyFrame frame;
  frame.mutable_open()->mutable_protocol()->set_major(major);
  frame.mutable_open()->mutable_protocol()->set_minor(minor);
  frame.mutable_open()->set_max_in_flight(1024);
  return frame;
}

v1::ProxyFrame Validate(uint64_t id, const std::string& product, int sleep_ms) {
  cart::LineItem item;
  item.set_product_id(product);
  item.set_quantity(sleep_ms);
  v1::ProxyFrame frame;
  frame.set_id(id);
  v1::Command* command = frame.mutable_action()->mutable_command();
  command->set_service_name(kFront);
  command->set_method("ValidateItem");
  *command->mutable_payload() = Pack(item);
  return frame;
}

class SessionStream {
 public:
  explicit SessionStream(const std::shared_ptr<grpc::Channel>& channel)
      : stub_(v1::Session::NewStub(channel)) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    stream_ = stub_->Connect(&context_);
  }

  bool Send(std::vector<v1::ProxyFrame> frames) {
    v1::ProxyMessage message;
    for (auto& frame : frames) *message.add_frames() = std::move(frame);
    return stream_->Write(message);
  }

  // Reads until `count` frames arrived (or the stream ends); returns them in arrival order.
  std::vector<v1::FunctionFrame> Receive(size_t count) {
    std::vector<v1::FunctionFrame> frames;
    v1::FunctionMessage message;
    while (frames.size() < count && stream_->Read(&message)) {
      for (auto& frame : *message.mutable_frames()) frames.push_back(std::move(frame));
    }
    return frames;
  }

  grpc::Status Close() {
    stream_->WritesDone();
    return Finish();
  }

  // Reads until the function ends the stream; its status.
  grpc::Status Finish() {
    v1::FunctionMessage rest;
    while (stream_->Read(&rest)) {
    }
    return stream_->Finish();
  }

 private:
  std::unique_ptr<v1::Session::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ProxyMessage, v1::FunctionMessage>> stream_;
};

TEST(SdkSessionTest, AcceptsThenAnswersEveryCommandById) {
  std::atomic<int> running{0}, most{0};
  Function function("session-test");
  RegisterSleepy(function, &running, &most);
  ServedFunction served(function);
  SessionStream stream(served.channel());
  std::vector<v1::ProxyFrame> frames{Open()};
  for (uint64_t id = 1; id <= 100; ++id) frames.push_back(Validate(id, "p" + std::to_string(id), 0));
  ASSERT_TRUE(stream.Send(std::move(frames)));
  std::vector<v1::FunctionFrame> answers = stream.Receive(101);
  ASSERT_EQ(answers.size(), 101u);
  ASSERT_TRUE(answers[0].has_accepted());
  EXPECT_EQ(answers[0].accepted().protocol().major(), 1u);
  EXPECT_EQ(answers[0].accepted().protocol().minor(), 2u);
  std::set<uint64_t> ids;
  for (size_t i = 1; i < answers.size(); ++i) {
    ASSERT_TRUE(answers[i].has_action()) << answers[i].DebugString();
    cart::LineItem item;
    ASSERT_TRUE(answers[i].action().client_action().reply().payload().UnpackTo(&item));
    EXPECT_EQ(item.product_id(), "p" + std::to_string(answers[i].id()));
    ids.insert(answers[i].id());
  }
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_TRUE(stream.Close().ok());
}

TEST(SdkSessionTest, HandlerThreadsRunCommandsConcurrentlyAndAnswerInAnyOrder) {
  std::atomic<int> running{0}, most{0};
  Function function("session-test");
  RegisterSleepy(function, &running, &most);
  ServedFunction served(function, ServeOptions{.io_threads = 1, .handler_threads = 4});
  SessionStream stream(served.channel());
  // The first command sleeps longest: with several handler threads it is answered last.
  std::vector<v1::ProxyFrame> frames{Open(), Validate(1, "slow", 300)};
  for (uint64_t id = 2; id <= 8; ++id) frames.push_back(Validate(id, "fast", 20));
  ASSERT_TRUE(stream.Send(std::move(frames)));
  std::vector<v1::FunctionFrame> answers = stream.Receive(9);
  ASSERT_EQ(answers.size(), 9u);
  EXPECT_EQ(answers.back().id(), 1u) << "the slow command finishes after the fast ones";
  EXPECT_GE(most.load(), 2) << "handlers ran concurrently";
  EXPECT_LE(most.load(), 4) << "at most handler_threads at once";
}

TEST(SdkSessionTest, AnotherMajorVersionEndsTheStreamNamingBoth) {
  Function function("session-test");
  std::atomic<int> running{0}, most{0};
  RegisterSleepy(function, &running, &most);
  ServedFunction served(function);
  SessionStream stream(served.channel());
  ASSERT_TRUE(stream.Send({Open(2, 0), Validate(1, "p", 0)}));
  grpc::Status status = stream.Close();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), AllOf(HasSubstr("2.0"), HasSubstr("1.2")));
}

TEST(SdkSessionTest, CommandsBeforeOpenEndTheStream) {
  Function function("session-test");
  std::atomic<int> running{0}, most{0};
  RegisterSleepy(function, &running, &most);
  ServedFunction served(function);
  SessionStream stream(served.channel());
  ASSERT_TRUE(stream.Send({Validate(1, "p", 0)}));
  grpc::Status status = stream.Close();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("open frame"));
}

TEST(SdkSessionTest, UnknownMethodIsAFrameErrorAndTheStreamGoesOn) {
  Function function("session-test");
  std::atomic<int> running{0}, most{0};
  RegisterSleepy(function, &running, &most);
  ServedFunction served(function);
  SessionStream stream(served.channel());
  v1::ProxyFrame unknown = Validate(1, "p", 0);
  unknown.mutable_action()->mutable_command()->set_method("Nope");
  ASSERT_TRUE(stream.Send({Open(), std::move(unknown), Validate(2, "q", 0)}));
  std::vector<v1::FunctionFrame> answers = stream.Receive(3);
  ASSERT_EQ(answers.size(), 3u);
  std::map<uint64_t, v1::FunctionFrame> by_id;
  for (auto& answer : answers) by_id[answer.id()] = answer;
  ASSERT_TRUE(by_id[1].has_error());
  EXPECT_EQ(by_id[1].error().code(), static_cast<int>(grpc::StatusCode::UNIMPLEMENTED));
  EXPECT_THAT(by_id[1].error().message(), HasSubstr("Nope"));
  EXPECT_TRUE(by_id[2].has_action());
}

TEST(SdkSessionTest, ShutdownAnswersWhatIsInFlightThenEndsTheStream) {
  Function function("session-test");
  std::atomic<int> running{0}, most{0};
  RegisterSleepy(function, &running, &most);
  ServedFunction served(function, ServeOptions{.io_threads = 1, .handler_threads = 2});
  SessionStream stream(served.channel());
  ASSERT_TRUE(stream.Send({Open(), Validate(1, "p", 200)}));
  std::vector<v1::FunctionFrame> accepted = stream.Receive(1);
  ASSERT_EQ(accepted.size(), 1u);
  std::thread stopper([&] { function.Shutdown(std::chrono::seconds(5)); });
  std::vector<v1::FunctionFrame> answers = stream.Receive(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].id(), 1u);
  EXPECT_TRUE(answers[0].has_action());
  // The function ends the stream: OK, or UNAVAILABLE when its server closed the connection
  // before the client had read the end.
  const auto finishing = std::chrono::steady_clock::now();
  grpc::Status ended = stream.Finish();
  EXPECT_TRUE(ended.ok() || ended.error_code() == grpc::StatusCode::UNAVAILABLE)
      << ended.error_code() << " " << ended.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - finishing, std::chrono::seconds(4))
      << "the stream ends once its commands are answered, not at the end of the grace";
  stopper.join();
}

}  // namespace
}  // namespace massa::sdk::testing

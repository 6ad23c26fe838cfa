// The session transport (src/protocol/native/session.h) against a fake function that serves
// Session.Connect on a unix socket and does what each test asks: answer at once, hold commands
// and answer them in another order, end a stream, stop reading, speak another version.
#include "protocol/native/session.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "massa/protocol/v1/protocol.grpc.pb.h"
#include "protocol/native/convert.h"
#include "rpc/cq_loop.h"

namespace massa::native {
namespace {

namespace v1 = protocol::v1;
using ::testing::AllOf;
using ::testing::HasSubstr;
using Steady = std::chrono::steady_clock;

enum class Mode {
  kEcho,         // answer every command at once
  kHold,         // keep commands until Release()
  kNewMajor,     // accept with protocol 2.0
  kRefuse,       // end the stream with FAILED_PRECONDITION
  kStopReading,  // read the open frame, then never read again
  kFrameError,   // answer every command with a FrameError (UNIMPLEMENTED)
};

// The function side of the protocol, one thread per stream (grpc's sync API).
class FakeFunction final : public v1::Session::Service {
 public:
  explicit FakeFunction(Mode mode) : mode_(mode) {}

  grpc::Status Connect(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<v1::FunctionMessage, v1::ProxyMessage>* stream)
      override {
    int index = 0;
    {
      absl::MutexLock lock(&mu_);
      index = static_cast<int>(streams_.size());
      streams_.push_back(context);
      writers_[index] = stream;  // Release writes held answers from the test's thread
    }
    if (mode_ == Mode::kRefuse) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "incompatible protocol: this function speaks 7.0");
    }
    v1::ProxyMessage message;
    bool opened = false;
    while (stream->Read(&message)) {
      v1::FunctionMessage out;
      for (v1::ProxyFrame& frame : *message.mutable_frames()) {
        if (frame.has_open()) {
          // Accepted at once, before any command of the same message is held (Release may
          // answer those from the test's thread as soon as they are).
          opened = true;
          v1::FunctionMessage accepted;
          accepted.add_frames()->mutable_accepted()->mutable_protocol()->set_major(
              mode_ == Mode::kNewMajor ? 2 : kProtocolMajor);
          absl::MutexLock lock(&mu_);  // one write at a time on a stream (Release writes too)
          if (!stream->Write(accepted)) {
            writers_.erase(index);
            return grpc::Status::OK;
          }
          continue;
        }
        if (!opened) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no open");
        if (mode_ == Mode::kHold) {
          absl::MutexLock lock(&mu_);
          held_[index].push_back(std::move(frame));
          continue;
        }
        *out.add_frames() = Answer(frame);
      }
      if (out.frames_size() > 0) {
        absl::MutexLock lock(&mu_);
        if (!stream->Write(out)) break;
      }
      if (mode_ == Mode::kStopReading) {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(&unblock_));
        break;
      }
    }
    absl::MutexLock lock(&mu_);
    writers_.erase(index);
    return grpc::Status::OK;
  }

  // What the function answers to `frame`: a reply whose payload is the command's.
  v1::FunctionFrame Answer(const v1::ProxyFrame& frame) {
    v1::FunctionFrame answer;
    answer.set_id(frame.id());
    if (mode_ == Mode::kFrameError) {
      answer.mutable_error()->set_code(static_cast<int>(grpc::StatusCode::UNIMPLEMENTED));
      answer.mutable_error()->set_message("no such method in the fake");
      return answer;
    }
    *answer.mutable_action()->mutable_client_action()->mutable_reply()->mutable_payload() =
        frame.action().command().payload();
    return answer;
  }

  // Commands held on stream `index`.
  size_t held(int index) {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(index);
    return it == held_.end() ? 0 : it->second.size();
  }

  size_t held_total() {
    absl::MutexLock lock(&mu_);
    size_t total = 0;
    for (const auto& [index, frames] : held_) total += frames.size();
    return total;
  }

  // Answers the commands held on stream `index`, last first, in one message.
  void Release(int index) {
    absl::MutexLock lock(&mu_);
    v1::FunctionMessage out;
    std::vector<v1::ProxyFrame>& frames = held_[index];
    for (auto it = frames.rbegin(); it != frames.rend(); ++it) *out.add_frames() = Answer(*it);
    frames.clear();
    auto writer = writers_.find(index);
    if (writer != writers_.end()) writer->second->Write(out);
  }

  // Ends stream `index` from the function's side, as a crash of its connection would.
  void Kill(int index) {
    absl::MutexLock lock(&mu_);
    streams_.at(static_cast<size_t>(index))->TryCancel();
  }

  int streams() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(streams_.size());
  }

  void Unblock() {
    absl::MutexLock lock(&mu_);
    unblock_ = true;
  }

 private:
  const Mode mode_;
  absl::Mutex mu_;
  std::vector<grpc::ServerContext*> streams_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::vector<v1::ProxyFrame>> held_ ABSL_GUARDED_BY(mu_);
  std::map<int, grpc::ServerReaderWriter<v1::FunctionMessage, v1::ProxyMessage>*> writers_
      ABSL_GUARDED_BY(mu_);
  bool unblock_ ABSL_GUARDED_BY(mu_) = false;
};

// Outcomes of the requests a test sent, by request number.
class Results {
 public:
  FrameCallback Callback(int n) {
    return [this, n](absl::StatusOr<v1::FunctionFrame> frame) {
      absl::MutexLock lock(&mu_);
      results_.emplace(n, std::move(frame));
    };
  }

  // Waits until `count` requests have their outcome (or 20 s pass).
  bool WaitFor(size_t count) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return results_.size() >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(20));
  }

  std::map<int, absl::StatusOr<v1::FunctionFrame>> Take() {
    absl::MutexLock lock(&mu_);
    return std::move(results_);
  }

  size_t size() {
    absl::MutexLock lock(&mu_);
    return results_.size();
  }

 private:
  absl::Mutex mu_;
  std::map<int, absl::StatusOr<v1::FunctionFrame>> results_ ABSL_GUARDED_BY(mu_);
};

v1::ProxyFrame Command(const std::string& payload) {
  v1::ProxyFrame frame;
  v1::Command* command = frame.mutable_action()->mutable_command();
  command->set_service_name("test.Fake");
  command->set_method("Call");
  command->mutable_payload()->set_type_url("type.googleapis.com/test.Bytes");
  command->mutable_payload()->set_value(payload);
  return frame;
}

std::string ReplyPayload(const v1::FunctionFrame& frame) {
  return frame.action().client_action().reply().payload().value();
}

class SessionTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (transport_ != nullptr) transport_->Shutdown();
    transport_.reset();
    if (fake_ != nullptr) fake_->Unblock();
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
    loop_.reset();
    std::remove(socket_.c_str());
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }

  void StartFunction(Mode mode) {
    char pattern[] = "/tmp/massa-session-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    socket_ = dir_ + "/fn.sock";
    fake_ = std::make_unique<FakeFunction>(mode);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + socket_, grpc::InsecureServerCredentials());
    // A fixed receive window (no growth by bandwidth probing): a function that stops reading
    // stops Massa's writes after 64 KiB, as a slow one with default settings eventually would.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 << 10);
    builder.RegisterService(fake_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  void StartTransport(SessionOptions options = {}) {
    loop_ = std::make_unique<rpc::CqLoop>(1, "test-loop");
    loop_->Start();
    if (options.address.empty()) options.address = "unix:" + socket_;
    options_ = options;
    transport_ = std::make_unique<SessionTransport>(options, *loop_);
    transport_->Start();
  }

  void Send(int n, const std::string& payload,
            Steady::time_point deadline = Steady::time_point::max()) {
    transport_->Send(Command(payload), deadline, results_.Callback(n));
  }

  // Waits until `condition` holds (up to 20 s).
  template <typename F>
  static bool Eventually(F condition) {
    const auto until = Steady::now() + std::chrono::seconds(20);
    while (!condition()) {
      if (Steady::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  std::string dir_;
  std::string socket_;
  std::unique_ptr<FakeFunction> fake_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<rpc::CqLoop> loop_;
  SessionOptions options_;
  std::unique_ptr<SessionTransport> transport_;
  Results results_;
};

TEST_F(SessionTest, AnswersEachRequest) {
  StartFunction(Mode::kEcho);
  StartTransport();
  for (int i = 0; i < 50; ++i) Send(i, "p" + std::to_string(i));
  ASSERT_TRUE(results_.WaitFor(50));
  auto results = results_.Take();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(results.at(i).ok()) << results.at(i).status();
    EXPECT_EQ(ReplyPayload(*results.at(i)), "p" + std::to_string(i));
  }
  EXPECT_TRUE(transport_->Connected());
}

TEST_F(SessionTest, ManyInFlightOnOneStreamAnsweredOutOfOrder) {
  StartFunction(Mode::kHold);
  SessionOptions options;
  options.streams = 1;
  StartTransport(options);
  constexpr int kCount = 200;
  for (int i = 0; i < kCount; ++i) Send(i, "p" + std::to_string(i));
  ASSERT_TRUE(Eventually([&] { return fake_->held(0) == kCount; }));
  EXPECT_EQ(fake_->streams(), 1);
  EXPECT_EQ(transport_->InFlight(), std::vector<size_t>{kCount});
  EXPECT_EQ(results_.size(), 0u);
  fake_->Release(0);  // last first
  ASSERT_TRUE(results_.WaitFor(kCount));
  auto results = results_.Take();
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(results.at(i).ok()) << results.at(i).status();
    EXPECT_EQ(ReplyPayload(*results.at(i)), "p" + std::to_string(i));
  }
}

TEST_F(SessionTest, BrokenConnectionFailsExactlyItsRequests) {
  StartFunction(Mode::kHold);
  SessionOptions options;
  options.streams = 2;
  StartTransport(options);
  // Both open (accepted), not only connected: a stream still opening takes requests last.
  ASSERT_TRUE(Eventually([&] { return fake_->streams() == 2 && transport_->OpenStreams() == 2; }));
  // Each request goes to the stream with fewer in flight: they alternate.
  constexpr int kCount = 20;
  for (int i = 0; i < kCount; ++i) Send(i, "p" + std::to_string(i));
  ASSERT_TRUE(Eventually([&] { return fake_->held_total() == kCount; }));
  const size_t on_first = fake_->held(0);
  ASSERT_GT(on_first, 0u);
  ASSERT_LT(on_first, static_cast<size_t>(kCount));

  fake_->Kill(0);
  ASSERT_TRUE(results_.WaitFor(on_first));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(results_.size(), on_first) << "only the requests of the broken stream may fail";
  fake_->Release(1);
  ASSERT_TRUE(results_.WaitFor(kCount));
  int failed = 0;
  for (auto& [n, result] : results_.Take()) {
    if (result.ok()) {
      EXPECT_EQ(ReplyPayload(*result), "p" + std::to_string(n));
      continue;
    }
    ++failed;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(result.status().message()), HasSubstr("connection to the user function"));
  }
  EXPECT_EQ(failed, static_cast<int>(on_first));
  // The broken stream is replaced: new requests are answered again.
  ASSERT_TRUE(Eventually([&] { return fake_->streams() == 3; }));
}

TEST_F(SessionTest, FunctionThatStopsReadingIsBoundedThenReset) {
  StartFunction(Mode::kStopReading);
  SessionOptions options;
  options.streams = 1;
  options.max_in_flight = 64;
  options.max_queued_bytes = 1 << 20;
  options.call_timeout = std::chrono::milliseconds(500);
  StartTransport(options);
  ASSERT_TRUE(Eventually([&] { return transport_->Connected(); }));
  const std::string big(64 << 10, 'x');
  constexpr int kCount = 2000;  // 125 MiB if nothing pushed back
  for (int i = 0; i < kCount; ++i) Send(i, big);
  EXPECT_LE(transport_->InFlight().at(0), 64u);
  ASSERT_TRUE(results_.WaitFor(kCount));
  int exhausted = 0;
  for (auto& [n, result] : results_.Take()) {
    ASSERT_FALSE(result.ok()) << "request " << n << " cannot have an answer";
    const absl::StatusCode code = result.status().code();
    EXPECT_TRUE(code == absl::StatusCode::kResourceExhausted ||
                code == absl::StatusCode::kDeadlineExceeded ||
                code == absl::StatusCode::kUnavailable)
        << result.status();
    if (code == absl::StatusCode::kResourceExhausted) {
      ++exhausted;
      EXPECT_THAT(std::string(result.status().message()), HasSubstr("not keeping up"));
    }
  }
  EXPECT_GE(exhausted, kCount - 64);
  // The stalled connection is reset and a new stream opened.
  ASSERT_TRUE(Eventually([&] { return fake_->streams() >= 2; }));
}

TEST_F(SessionTest, OtherMajorVersionInAcceptedIsRefused) {
  StartFunction(Mode::kNewMajor);
  StartTransport();
  Send(0, "p");
  ASSERT_TRUE(results_.WaitFor(1));
  absl::StatusOr<v1::FunctionFrame> result = results_.Take().at(0);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition) << result.status();
  EXPECT_THAT(std::string(result.status().message()),
              AllOf(HasSubstr("2.0"), HasSubstr(std::to_string(kProtocolMajor) + "." +
                                                std::to_string(kProtocolMinor))));
  EXPECT_FALSE(transport_->Connected());
}

TEST_F(SessionTest, FunctionRefusingTheSessionGivesItsReason) {
  StartFunction(Mode::kRefuse);
  StartTransport();
  Send(0, "p");
  ASSERT_TRUE(results_.WaitFor(1));
  absl::StatusOr<v1::FunctionFrame> result = results_.Take().at(0);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(result.status().message()),
              AllOf(HasSubstr("refused the session"), HasSubstr("speaks 7.0")));
}

TEST_F(SessionTest, FrameErrorReachesTheCallerWithItsCode) {
  StartFunction(Mode::kFrameError);
  StartTransport();
  Send(0, "p");
  ASSERT_TRUE(results_.WaitFor(1));
  absl::StatusOr<v1::FunctionFrame> result = results_.Take().at(0);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("no such method in the fake"));
}

TEST_F(SessionTest, DeadlinePassesWhileTheFunctionHolds) {
  StartFunction(Mode::kHold);
  StartTransport();
  const auto sent = Steady::now();
  Send(0, "p", sent + std::chrono::milliseconds(100));
  Send(1, "q");  // no deadline of its own: the call timeout applies
  ASSERT_TRUE(results_.WaitFor(1));
  EXPECT_GE(Steady::now() - sent, std::chrono::milliseconds(100));
  auto results = results_.Take();
  ASSERT_EQ(results.count(0), 1u);
  EXPECT_EQ(results.at(0).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(results.count(1), 0u) << "request 1 must still wait";
}

TEST_F(SessionTest, NoFunctionIsUnavailable) {
  char pattern[] = "/tmp/massa-session-XXXXXX";
  dir_ = ::mkdtemp(pattern);
  socket_ = dir_ + "/nobody.sock";
  StartTransport();
  Send(0, "p");
  ASSERT_TRUE(results_.WaitFor(1));
  EXPECT_EQ(results_.Take().at(0).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(transport_->Connected());
}

TEST_F(SessionTest, ShutdownFailsWhatIsInFlightAndLaterRequests) {
  StartFunction(Mode::kHold);
  StartTransport();
  for (int i = 0; i < 5; ++i) Send(i, "p");
  ASSERT_TRUE(Eventually([&] { return fake_->held_total() == 5; }));
  transport_->Shutdown();
  EXPECT_EQ(results_.size(), 5u) << "every callback has run when Shutdown returns";
  Send(5, "late");
  ASSERT_TRUE(results_.WaitFor(6));
  for (auto& [n, result] : results_.Take()) {
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << n;
  }
}

}  // namespace
}  // namespace massa::native

// Function::Run as main() uses it, through the example binaries: flags, the ready line, signals.
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test_function.h"

extern char** environ;

namespace massa::sdk {
namespace {

namespace v1 = massa::protocol::v1;

// An example binary running as a child process with its stdout on a pipe.
class Child {
 public:
  explicit Child(std::vector<std::string> args,
                 const std::string& binary = MASSA_SHOPPING_CART_FUNCTION) {
    int fds[2];
    if (::pipe(fds) != 0) ADD_FAILURE() << "pipe";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    args.insert(args.begin(), binary);
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
      ADD_FAILURE() << "cannot start " << argv[0];
      pid_ = -1;
    }
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    out_ = ::fdopen(fds[0], "r");
  }

  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::fclose(out_);
  }

  // The next line of its stdout, without the newline ("" at end of file).
  std::string ReadLine() {
    std::string line;
    for (int c = std::fgetc(out_); c != EOF && c != '\n'; c = std::fgetc(out_)) line += char(c);
    return line;
  }

  // Sends `signal` (0: none) and returns the exit code, or -1 when killed by a signal.
  int Stop(int signal) {
    if (signal != 0) ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  std::FILE* out_ = nullptr;
};

bool Discoverable(const std::string& address) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::Spec spec;
  return v1::Discovery::NewStub(channel)->Discover(&context, testing::Proxy(), &spec).ok() &&
         spec.function().function_name() == "shopping-cart" && spec.services_size() == 2;
}

TEST(RunTest, ServesUntilSigterm) {
  testing::TempDir dir;
  const std::string address = "unix:" + dir.path() + "/cart.sock";
  for (int signal : {SIGTERM, SIGINT}) {
    Child child({"--listen", address});
    EXPECT_EQ(child.ReadLine(), "listening on " + address);
    EXPECT_TRUE(Discoverable(address));
    EXPECT_EQ(child.Stop(signal), 0);
    struct stat info {};
    EXPECT_NE(::stat((dir.path() + "/cart.sock").c_str(), &info), 0) << "socket left behind";
  }
}

TEST(RunTest, TcpWithEqualsFlag) {
  Child child({"--listen=127.0.0.1:0"});
  const std::string line = child.ReadLine();
  ASSERT_EQ(line.rfind("listening on 127.0.0.1:", 0), 0u) << line;
  EXPECT_TRUE(Discoverable(line.substr(std::string("listening on ").size())));
  EXPECT_EQ(child.Stop(SIGTERM), 0);
}

TEST(RunTest, ExitCodes) {
  EXPECT_EQ(Child({"--help"}).Stop(0), 0);
  EXPECT_EQ(Child({"--nope"}).Stop(0), 2);
  EXPECT_EQ(Child({"--listen"}).Stop(0), 2);
  EXPECT_EQ(Child({"--listen", "unix:/no/such/dir/f.sock"}).Stop(0), 1);
}

// The spec the function at `address` sends at discovery (empty if it does not answer).
v1::Spec Discover(const std::string& address) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::Spec spec;
  grpc::Status status =
      v1::Discovery::NewStub(channel)->Discover(&context, testing::Proxy(), &spec);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return spec;
}

TEST(RunTest, EventSourcedCartJournalFlagsGoIntoTheSpec) {
  testing::TempDir dir;
  const std::string address = "unix:" + dir.path() + "/escart.sock";
  {
    Child child({"--snapshot-every", "7", "--listen", address, "--delete-events-on-snapshot"},
                MASSA_ESCART_FUNCTION);
    ASSERT_EQ(child.ReadLine(), "listening on " + address);
    v1::Spec spec = Discover(address);
    EXPECT_EQ(spec.function().function_name(), "event-sourced-cart");
    ASSERT_EQ(spec.services_size(), 1);
    EXPECT_EQ(spec.services(0).kind(), v1::ENTITY_KIND_EVENT_SOURCED);
    EXPECT_EQ(spec.services(0).snapshot_every(), 7u);
    EXPECT_TRUE(spec.services(0).delete_events_on_snapshot());
    EXPECT_EQ(child.Stop(SIGTERM), 0);
  }
  {
    Child child({"--listen=" + address, "--snapshot-every=0"}, MASSA_ESCART_FUNCTION);
    ASSERT_EQ(child.ReadLine(), "listening on " + address);
    v1::Spec spec = Discover(address);
    ASSERT_EQ(spec.services_size(), 1);
    EXPECT_EQ(spec.services(0).snapshot_every(), 0u);
    EXPECT_FALSE(spec.services(0).delete_events_on_snapshot());
    EXPECT_EQ(child.Stop(SIGTERM), 0);
  }
}

TEST(RunTest, EventSourcedCartExitCodes) {
  EXPECT_EQ(Child({"--help"}, MASSA_ESCART_FUNCTION).Stop(0), 0);
  EXPECT_EQ(Child({"--snapshot-every"}, MASSA_ESCART_FUNCTION).Stop(0), 2);
  EXPECT_EQ(Child({"--snapshot-every", "many"}, MASSA_ESCART_FUNCTION).Stop(0), 2);
  EXPECT_EQ(Child({"--snapshot-every=-1"}, MASSA_ESCART_FUNCTION).Stop(0), 2);
  EXPECT_EQ(Child({"--nope"}, MASSA_ESCART_FUNCTION).Stop(0), 2);
}

}  // namespace
}  // namespace massa::sdk

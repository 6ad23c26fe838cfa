// Starting the real binaries from tests: a child process whose stdout and stderr go to a log
// file that the test can wait on.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace massa::testing {

// Polls `done` every 20 ms until it holds or `timeout` passes; returns whether it holds.
template <typename F>
bool PollUntil(F done, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

class Process {
 public:
  // Starts argv[0] with the given arguments; output goes to `log_path`.
  Process(std::vector<std::string> argv, std::string log_path);
  ~Process();  // SIGKILLs the process if it still runs
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Waits until a line of the log contains `needle` and returns that line, or nullopt if the
  // process exits or `timeout` passes first.
  std::optional<std::string> WaitForLine(const std::string& needle,
                                         std::chrono::milliseconds timeout);

  void Signal(int signal);
  // Waits for the process to exit (up to `timeout`) and returns its exit status as the shell
  // shows it (128 + signal for a signal), or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  bool running();
  std::string log() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> exit_status_;
};

// Where a started `massa serve` listens.
struct MassaEndpoints {
  std::string grpc_address;  // host:port
  int http_port = 0;
  int admin_port = 0;
  int spawn_port = 0;  // the Spawn sidecar API, with `--protocol spawn` among the arguments
};

// Starts `massa serve` (`binary`, default MASSA_BIN) for the function at `function_address`,
// with gRPC, HTTP and admin on loopback ports the kernel picks, RocksDB data in `data_dir`, log
// level warn and `extra` arguments, and waits until it announces its ports. Sets `process`
// either way; nullopt when it did not start (its log says why).
std::optional<MassaEndpoints> StartMassa(std::unique_ptr<Process>& process,
                                         const std::string& function_address,
                                         const std::string& data_dir, const std::string& log_path,
                                         const std::vector<std::string>& extra = {},
                                         const std::string& binary = "");

struct HttpResult {
  int status = 0;  // 0 when the request could not be sent or the answer not read
  std::string body;
  std::string headers;
};

// One HTTP/1.1 request to 127.0.0.1:`port` (Connection: close). `content_type` empty = none.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

HttpResult HttpCall(int port, const std::string& method, const std::string& target,
                    const std::string& body = "",
                    const std::string& content_type = "application/json",
                    const HttpHeaders& headers = {});

// An HTTP/1.1 connection to 127.0.0.1:`port` that carries one request after another
// (keep-alive) until either side closes it. Responses are read by their Content-Length.
class HttpConnection {
 public:
  explicit HttpConnection(int port);  // connects; see open()
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Whether the connection can take a request: connected, and not closed by either side.
  bool open() const { return fd_ >= 0; }

  // Sends a request and reads its response (status 0 when none came). `keep_alive` false
  // asks the server to close after it. `*sent` says whether the whole request was written.
  // The connection closes after a response that says `Connection: close`, or none.
  HttpResult Request(const std::string& method, const std::string& target,
                     const std::string& body = "",
                     const std::string& content_type = "application/json",
                     bool keep_alive = true, bool* sent = nullptr,
                     const HttpHeaders& headers = {});

 private:
  void Close();
  int fd_ = -1;
  std::string buffered_;  // bytes read past the previous response
};

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace massa::testing

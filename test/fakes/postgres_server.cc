#include "fakes/postgres_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fakes/spawn.h"

extern char** environ;

namespace massa::testing {
namespace {

constexpr char kDefaultBinDir[] = "/usr/lib/postgresql/15/bin";
constexpr int kProgramTimeoutSeconds = 120;

bool Executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

// The directory with initdb and pg_ctl: $MASSA_PG_BINDIR, PostgreSQL 15's, or any version's.
std::string FindBinDir() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MASSA_PG_BINDIR")) candidates.emplace_back(env);
  candidates.emplace_back(kDefaultBinDir);
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    candidates.push_back(entry.path() / "bin");
  }
  for (const std::string& dir : candidates) {
    if (Executable(dir + "/initdb") && Executable(dir + "/pg_ctl")) return dir;
  }
  return "";
}

// Alive and not a zombie.
bool Running(pid_t pid) {
  const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  const char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

// The processes whose parent is `parent`.
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* entry = readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(entry->d_name));
    if (pid <= 0) continue;
    const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 2));
    char state = 0;
    pid_t ppid = 0;
    fields >> state >> ppid;
    if (ppid == parent) out.push_back(pid);
  }
  closedir(proc);
  return out;
}

// "postgresql://" URIs need the database name percent-encoded.
std::string PercentEncode(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '_' || c == '-' || c == '.') {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(u, absl::kZeroPad2));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start(
    PostgresServerOptions options) {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->options_ = options;
  server->bin_ = FindBinDir();
  if (server->bin_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "PostgreSQL's server programs (initdb, pg_ctl) are not in ", kDefaultBinDir,
        " (or $MASSA_PG_BINDIR): install the Debian package postgresql-15 (scripts/setup.sh "
        "does)"));
  }
  // A temporary directory the postgres user can reach: $TMPDIR unless only root can.
  std::string base = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp";
  struct stat base_stat {};
  if (geteuid() == 0 && (stat(base.c_str(), &base_stat) != 0 || (base_stat.st_mode & S_IXOTH) == 0)) {
    base = "/tmp";
  }
  std::string pattern = base + "/massa-pg-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp(", pattern, ") failed"));
  }
  server->dir_ = pattern;
  if (geteuid() == 0) {
    const passwd* postgres = getpwnam("postgres");
    if (postgres == nullptr) {
      return absl::FailedPreconditionError(
          "there is no user postgres to run PostgreSQL as (tests run as root, which initdb "
          "refuses): install the Debian package postgresql-15");
    }
    if (chown(server->dir_.c_str(), postgres->pw_uid, postgres->pw_gid) != 0) {
      return absl::InternalError(absl::StrCat("chown ", server->dir_, " failed"));
    }
  }
  absl::Status status = server->InitDb();
  // The port is chosen before the server binds it: another process may take it meanwhile,
  // so a failed start is tried again on another port.
  for (int attempt = 0; status.ok() && attempt < 3; ++attempt) {
    const int port = FreeLoopbackPort();
    if (port < 0) return absl::InternalError("cannot bind a loopback port");
    server->port_ = port;
    status = server->StartServer();
    if (status.ok()) return server;
  }
  return status;
}

PostgresServer::~PostgresServer() {
  if (running_ && !Stop().ok()) (void)Kill();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string PostgresServer::conninfo(std::string_view database) const {
  return absl::StrCat("postgresql://postgres@127.0.0.1:", port_, "/", PercentEncode(database));
}

absl::Status PostgresServer::Run(const std::string& program, std::vector<std::string> args,
                                 bool as_postgres, int timeout_seconds, std::string* output) {
  std::vector<std::string> argv;
  if (as_postgres && geteuid() == 0) argv = {"/usr/sbin/runuser", "-u", "postgres", "--"};
  argv.push_back(bin_ + "/" + program);
  for (std::string& arg : args) argv.push_back(std::move(arg));
  std::vector<std::string> env_strings = {"PGCONNECT_TIMEOUT=10"};
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> env;
  for (std::string& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);

  const std::string out_path = absl::StrCat(dir_, "/", program, ".out");
  const std::string started = argv[0];
  // Its own group, so a timeout kills all of it.
  const pid_t pid = SpawnLogged(std::move(argv), out_path,
                                SpawnOptions{/*truncate_log=*/true, /*own_group=*/true, env.data()});
  if (pid < 0) return absl::InternalError(absl::StrCat("cannot start ", started));

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  int wstatus = 0;
  bool timed_out = false;
  while (waitpid(pid, &wstatus, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string out = ReadFile(out_path);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  if (output != nullptr) *output = out;
  if (timed_out) {
    return absl::UnavailableError(absl::StrCat(program, " did not finish within ",
                                               timeout_seconds, " s: ", Tail(out)));
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return absl::UnavailableError(absl::StrCat(program, " failed (status ", wstatus,
                                               "): ", Tail(out)));
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::InitDb() {
  absl::Status status =
      Run("initdb",
          {"-D", dir_ + "/data", "-U", "postgres", "--auth=trust", "-E", "UTF8",
           "--locale=C.UTF-8", "--no-sync", "--no-instructions"},
          /*as_postgres=*/true, kProgramTimeoutSeconds);
  if (!status.ok()) return status;
  // Appended settings override initdb's; the port is added by StartServer.
  std::ofstream conf(dir_ + "/data/postgresql.conf", std::ios::app);
  const char* durable = options_.fsync ? "on" : "off";
  conf << "\n# massa::testing::PostgresServer\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "unix_socket_directories = '" << dir_ << "'\n"
       << "fsync = " << durable << "\n"
       << "synchronous_commit = " << durable << "\n"
       << "full_page_writes = " << durable << "\n"
       << "max_connections = 200\n";
  return conf.good() ? absl::OkStatus()
                     : absl::InternalError("cannot write " + dir_ + "/data/postgresql.conf");
}

absl::Status PostgresServer::StartServer() {
  {
    std::ofstream conf(dir_ + "/data/postgresql.conf", std::ios::app);
    conf << "port = " << port_ << "\n";
  }
  absl::Status status = Run("pg_ctl",
                            {"-D", dir_ + "/data", "-l", dir_ + "/server.log", "-w", "-t", "60",
                             "start"},
                            /*as_postgres=*/true, kProgramTimeoutSeconds);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat(status.message(), "\nserver log: ", Tail(log())));
  }
  running_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase(std::string_view name) {
  if (name.empty() || name.size() > 63) {
    return absl::InvalidArgumentError(
        absl::StrCat("database name '", std::string(name), "' is not 1 to 63 bytes"));
  }
  absl::Status status = Run("createdb",
                            {"-h", "127.0.0.1", "-p", std::to_string(port_), "-U", "postgres",
                             "--", std::string(name)},
                            /*as_postgres=*/false, kProgramTimeoutSeconds);
  if (!status.ok()) return status;
  return conninfo(name);
}

absl::StatusOr<std::string> PostgresServer::Query(std::string_view database, std::string_view sql) {
  std::string output;
  absl::Status status =
      Run("psql",
          {"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
           std::to_string(port_), "-U", "postgres", "-d", conninfo(database), "-c",
           std::string(sql)},
          /*as_postgres=*/false, kProgramTimeoutSeconds, &output);
  if (!status.ok()) return status;
  return output;
}

pid_t PostgresServer::PostmasterPid() const {
  return static_cast<pid_t>(std::atoi(ReadFile(dir_ + "/data/postmaster.pid").c_str()));
}

absl::Status PostgresServer::Kill() {
  const pid_t postmaster = PostmasterPid();
  if (postmaster <= 0) return absl::FailedPreconditionError("no postmaster.pid: not running");
  // Stopped first, it forks no new backends while its children are collected.
  kill(postmaster, SIGSTOP);
  std::vector<pid_t> pids = ChildrenOf(postmaster);
  pids.push_back(postmaster);
  for (pid_t pid : pids) kill(pid, SIGKILL);
  running_ = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (pid_t pid : pids) {
    while (Running(pid)) {
      if (std::chrono::steady_clock::now() > deadline) {
        return absl::DeadlineExceededError(absl::StrCat("server process ", pid, " survived SIGKILL"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::Restart() {
  if (running_) return absl::FailedPreconditionError("the server is running");
  // A crash leaves the pid file (whose pid may still be a zombie) and the socket's lock.
  std::error_code ec;
  std::filesystem::remove(dir_ + "/data/postmaster.pid", ec);
  std::filesystem::remove(absl::StrCat(dir_, "/.s.PGSQL.", port_, ".lock"), ec);
  std::filesystem::remove(absl::StrCat(dir_, "/.s.PGSQL.", port_), ec);
  return StartServer();
}

absl::Status PostgresServer::Stop() {
  if (!running_) return absl::OkStatus();
  absl::Status status = Run("pg_ctl", {"-D", dir_ + "/data", "-m", "fast", "-w", "-t", "60", "stop"},
                            /*as_postgres=*/true, kProgramTimeoutSeconds);
  if (status.ok()) running_ = false;
  return status;
}

std::string PostgresServer::log() const { return ReadFile(dir_ + "/server.log"); }

}  // namespace massa::testing

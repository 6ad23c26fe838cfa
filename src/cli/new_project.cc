#include "cli/new_project.h"

#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace massa::cli {
namespace {

namespace fs = std::filesystem;

// Templates: NAME is the project name (proto package, C++ namespace), TITLE its capitalized
// form (message and service names are fixed), VERSION the SDK version it was written for.

constexpr std::string_view kProto = R"(// The API of NAME, served by massa over gRPC and HTTP/JSON.
syntax = "proto3";

package NAME.v1;

import "google/api/annotations.proto";
import "massa/protocol/v1/options.proto";

// A value entity: each counter (by counter_id) has its own state, kept durable by massa.
service Counter {
  rpc Increase(IncreaseRequest) returns (CounterValue) {
    option (google.api.http) = {
      post: "/counters/{counter_id}/increase"
      body: "*"
    };
  }
  rpc Get(GetCounterRequest) returns (CounterValue) {
    option (google.api.http) = {
      get: "/counters/{counter_id}"
    };
  }
}

// An action: stateless.
service Greeter {
  rpc Greet(GreetRequest) returns (Greeting) {
    option (google.api.http) = {
      get: "/greet/{name}"
    };
  }
}

// The state of one counter.
message CounterState {
  int64 value = 1;
}

message IncreaseRequest {
  string counter_id = 1 [(massa.protocol.v1.entity_key) = true];
  int64 by = 2;  // must be positive
}

message GetCounterRequest {
  string counter_id = 1 [(massa.protocol.v1.entity_key) = true];
}

message CounterValue {
  int64 value = 1;
}

message GreetRequest {
  string name = 1;
}

message Greeting {
  string message = 1;
}
)";

constexpr std::string_view kMain = R"(// NAME: a function for massa (https://github.com/massa-run/massa), written with the C++ SDK.
// Usage: NAME-function --listen unix:/tmp/NAME.sock   (then: massa serve --function ...)
#include "NAME/v1/NAME.pb.h"
#include "massa/sdk/function.h"

namespace api = NAME::v1;
using massa::sdk::ActionContext;
using massa::sdk::Code;
using massa::sdk::Fail;
using massa::sdk::Result;
using massa::sdk::ValueContext;

int main(int argc, char** argv) {
  massa::sdk::Function function("NAME", "0.1.0");

  function.AddValueEntity<api::CounterState>("NAME.v1.Counter")
      .Handle("Increase",
              [](ValueContext<api::CounterState>& ctx,
                 const api::IncreaseRequest& request) -> Result<api::CounterValue> {
                if (request.by() <= 0) return Fail(Code::kInvalidArgument, "by must be positive");
                ctx.mutable_state().set_value(ctx.state().value() + request.by());
                api::CounterValue reply;
                reply.set_value(ctx.state().value());
                return reply;
              })
      .Handle("Get", [](ValueContext<api::CounterState>& ctx,
                        const api::GetCounterRequest&) -> Result<api::CounterValue> {
        api::CounterValue reply;
        reply.set_value(ctx.state().value());
        return reply;
      });

  function.AddAction("NAME.v1.Greeter")
      .Handle("Greet", [](ActionContext&, const api::GreetRequest& request) -> Result<api::Greeting> {
        api::Greeting greeting;
        greeting.set_message("Hello, " + (request.name().empty() ? std::string("world")
                                                                  : request.name()));
        return greeting;
      });

  return function.Run(argc, argv);
}
)";

constexpr std::string_view kCMake = R"(cmake_minimum_required(VERSION 3.20)
project(NAME LANGUAGES CXX)

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)

# The Massa C++ SDK: installed by the massa-dev package, or by `cmake --install` into a prefix
# given with -DCMAKE_PREFIX_PATH=...
find_package(MassaSdk SDKVERSION CONFIG REQUIRED)

# proto/NAME/v1/NAME.proto, compiled with massa's own .proto files on the import path.
massa_sdk_add_protos(NAME_proto PROTOS NAME/v1/NAME.proto)

add_executable(NAME-function main.cc)
target_link_libraries(NAME-function PRIVATE NAME_proto massa::sdk)
)";

constexpr std::string_view kReadme = R"(# NAME

A function for [massa](https://github.com/massa-run/massa): a value entity `Counter` (its state
kept durable by massa) and a stateless action `Greeter`, declared in
[proto/NAME/v1/NAME.proto](proto/NAME/v1/NAME.proto) and implemented in [main.cc](main.cc)
with the massa C++ SDK.

## Build it and run it

```sh
cmake -S . -B build && cmake --build build     # needs the massa-dev package (or -DCMAKE_PREFIX_PATH=<where massa is installed>)
build/NAME-function --listen unix:/tmp/NAME.sock & massa serve --function unix:/tmp/NAME.sock --data-dir NAME-data
```

massa then serves the API on gRPC port 9000 and HTTP port 8080:

```sh
massa call NAME.v1.Counter/Increase '{"counter_id":"a","by":2}'   # {"value":"2"}
curl -X POST -H 'content-type: application/json' -d '{"by":3}' localhost:8080/counters/a/increase
curl localhost:8080/counters/a                                   # {"value":"5"}
curl localhost:8080/greet/you                                    # {"message":"Hello, you"}
```

Stop massa and start it again: the counters are still there (in `NAME-data`).

## Next

- Add methods to the `.proto`, then a `Handle("Method", ...)` for each in `main.cc`. An entity
  method's request marks its key field with `[(massa.protocol.v1.entity_key) = true]`.
- Handlers that block (on a database, a lock) run better on threads of their own:
  `NAME-function --handler-threads 8`.
- The SDK's guide: `/usr/share/doc/massa-dev` or the massa repository's `sdk/cpp/README.md`.
)";

constexpr std::string_view kGitignore = "/build/\n/NAME-data/\n";

// Words that cannot be a C++ namespace (the proto package becomes one).
constexpr std::string_view kReserved[] = {
    "alignas", "alignof", "and", "asm", "auto", "bool", "break", "case", "catch", "char",
    "class", "const", "constexpr", "continue", "default", "delete", "do", "double", "else",
    "enum", "explicit", "export", "extern", "false", "float", "for", "friend", "goto", "if",
    "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "nullptr",
    "operator", "or", "private", "protected", "public", "register", "return", "short",
    "signed", "sizeof", "static", "struct", "switch", "template", "this", "throw", "true",
    "try", "typedef", "typename", "union", "unsigned", "using", "virtual", "void", "volatile",
    "while", "xor", "google", "massa", "std"};

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 40) return false;
  for (std::string_view reserved : kReserved) {
    if (name == reserved) return false;
  }
  if (name[0] < 'a' || name[0] > 'z') return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

absl::Status NewProject(const std::string& name, const std::string& directory) {
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", name, "' is not a valid project name: use a lower-case identifier (a letter, then "
        "letters, digits or _; at most 40; not a C++ keyword), as it becomes the proto package "
        "and a C++ namespace"));
  }
  const fs::path root = directory.empty() ? fs::path(name) : fs::path(directory);
  std::error_code error;
  if (fs::exists(root, error)) {
    if (!fs::is_directory(root, error)) {
      return absl::AlreadyExistsError(absl::StrCat(root.string(), " exists and is not a directory"));
    }
    if (!fs::is_empty(root, error)) {
      return absl::AlreadyExistsError(
          absl::StrCat(root.string(), " is not empty; nothing was written (use a new directory)"));
    }
  }
  const std::vector<std::pair<std::string, std::string_view>> files = {
      {absl::StrCat("proto/", name, "/v1/", name, ".proto"), kProto},
      {"main.cc", kMain},
      {"CMakeLists.txt", kCMake},
      {"README.md", kReadme},
      {".gitignore", kGitignore},
  };
  for (const auto& [relative, text] : files) {
    const fs::path path = root / relative;
    fs::create_directories(path.parent_path(), error);
    if (error) {
      return absl::UnavailableError(
          absl::StrCat("cannot create ", path.parent_path().string(), ": ", error.message()));
    }
    std::ofstream out(path);
    out << absl::StrReplaceAll(absl::string_view(text.data(), text.size()),
                               {{"NAME", name}, {"SDKVERSION", MASSA_SDK_SERIES}});
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path.string()));
  }
  return absl::OkStatus();
}

}  // namespace massa::cli

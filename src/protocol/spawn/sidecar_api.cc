#include "protocol/spawn/sidecar_api.h"

#include <atomic>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/metrics.h"
#include "google/protobuf/any.pb.h"
#include "massa/entity/dispatcher.h"
#include "protocol/spawn/invocation.h"
#include "protocol/spawn/registration.h"
#include "protocol/spawn/spawn_driver.h"
#include "spawn/actors/protocol.pb.h"
#include "spdlog/spdlog.h"

namespace massa::spawn {
namespace {

namespace pb = ::spawn;
using Steady = std::chrono::steady_clock;

constexpr char kProtobuf[] = "application/octet-stream";

HttpResponse Protobuf(int status, const google::protobuf::MessageLite& message) {
  HttpResponse response;
  response.status = status;
  response.content_type = kProtobuf;
  response.body = message.SerializeAsString();
  return response;
}

HttpResponse Json(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

std::string Message(const absl::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
}

void SetError(pb::RequestStatus& out, const absl::Status& status) {
  out.set_status(pb::ERROR);
  out.set_message(Message(status));
}

HttpResponse InvocationError(const absl::Status& status) {
  pb::InvocationResponse response;
  SetError(*response.mutable_status(), status);
  return Protobuf(500, response);
}

// Parses a body of the route's request type, tolerating nothing else: a body that is not
// binary protobuf of that message fails with INVALID_ARGUMENT.
template <typename Message>
absl::Status Decode(const HttpRequest& request, Message& message, std::string_view what) {
  if (!message.ParseFromString(request.body)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the body is not a ", std::string(what), " (binary protobuf)"));
  }
  return absl::OkStatus();
}

struct Api {
  SidecarOptions options;
  Counter* registrations = nullptr;
  Counter* invocations = nullptr;
  Counter* invocation_errors = nullptr;

  void Register(const HttpRequest& request, HttpResponder respond) const;
  void Spawn(const HttpRequest& request, std::string_view query, HttpResponder respond) const;
  void Invoke(const HttpRequest& request, std::string_view path_system,
              std::string_view path_actor, HttpResponder respond) const;
  void Handle(HttpRequest request, HttpResponder respond) const;
};

void Api::Register(const HttpRequest& request, HttpResponder respond) const {
  auto refuse = [&respond](const absl::Status& status) {
    spdlog::warn("Spawn registration refused: {}", std::string(status.message()));
    pb::RegistrationResponse response;
    SetError(*response.mutable_status(), status);
    std::move(respond)(Protobuf(500, response));
  };
  absl::StatusOr<Registration> registration = ParseRegistration(request.body);
  if (!registration.ok()) return refuse(registration.status());
  absl::StatusOr<std::shared_ptr<const System>> system = System::Build(*std::move(registration));
  if (!system.ok()) return refuse(system.status());
  if (absl::Status installed = options.install(*system); !installed.ok()) {
    return refuse(installed);
  }
  if (registrations != nullptr) registrations->Add();
  pb::RegistrationResponse response;
  response.mutable_status()->set_status(pb::OK);
  response.mutable_status()->set_message("Accepted");
  pb::ProxyInfo& proxy = *response.mutable_proxy_info();
  proxy.set_protocol_major_version(1);
  proxy.set_protocol_minor_version(2);
  proxy.set_proxy_name("massa");
  proxy.set_proxy_version(MASSA_VERSION);
  std::move(respond)(Protobuf(200, response));
}

// Runs `commands` one after another; `done` gets the first failure, or OK.
void RunInOrder(Dispatcher& dispatcher, std::vector<Command> commands, size_t next,
                absl::AnyInvocable<void(absl::Status) &&> done) {
  if (next == commands.size()) {
    std::move(done)(absl::OkStatus());
    return;
  }
  Command command = commands[next];
  dispatcher.Dispatch(std::move(command), [&dispatcher, commands = std::move(commands), next,
                                           done = std::move(done)](CommandResult result) mutable {
    if (!result.status.ok()) {
      std::move(done)(std::move(result.status));
      return;
    }
    RunInOrder(dispatcher, std::move(commands), next + 1, std::move(done));
  });
}

void Api::Spawn(const HttpRequest& request, std::string_view query,
                HttpResponder respond) const {
  auto fail = [&respond](const absl::Status& status) {
    pb::SpawnResponse response;
    SetError(*response.mutable_status(), status);
    std::move(respond)(Protobuf(500, response));
  };
  for (absl::string_view param :
       absl::StrSplit(absl::string_view(query.data(), query.size()), '&', absl::SkipEmpty())) {
    int64_t revision = 0;
    if (absl::ConsumePrefix(&param, "revision=") && absl::SimpleAtoi(param, &revision) &&
        revision > 0) {
      return fail(absl::FailedPreconditionError(
          "revision: Massa keeps an actor's current state, not its past revisions"));
    }
  }
  pb::SpawnRequest spawn;
  if (absl::Status decoded = Decode(request, spawn, "spawn.SpawnRequest"); !decoded.ok()) {
    return fail(decoded);
  }
  std::shared_ptr<const System> system = options.driver->system();
  if (system == nullptr) return fail(absl::UnavailableError("no actor system is registered yet"));
  std::vector<Command> commands;
  std::vector<std::pair<std::string, std::string>> spawned;
  for (const ::spawn::actors::ActorId& id : spawn.actors()) {
    if (!id.system().empty() && id.system() != system->name()) {
      return fail(absl::NotFoundError(absl::StrCat("actor system '", id.system(),
                                                   "' is not served here (only '",
                                                   system->name(), "')")));
    }
    const Actor* parent = system->FindActor(id.parent());
    if (id.name().empty() || parent == nullptr ||
        parent->definition.kind != ActorKind::kUnnamed) {
      return fail(absl::InvalidArgumentError(absl::StrCat(
          "spawn '", id.name(), "': its parent '", id.parent(),
          "' is not an unnamed actor of system ", system->name())));
    }
    Command command;
    command.service = parent->service;
    command.entity_key = id.name();
    command.spawn = true;
    commands.push_back(std::move(command));
    spawned.emplace_back(id.name(), id.parent());
  }
  SpawnDriver* driver = options.driver;
  RunInOrder(*options.dispatcher, std::move(commands), 0,
             [driver, spawned = std::move(spawned),
              respond = std::move(respond)](absl::Status status) mutable {
               pb::SpawnResponse response;
               if (!status.ok()) {
                 SetError(*response.mutable_status(), status);
                 std::move(respond)(Protobuf(500, response));
                 return;
               }
               for (const auto& [name, parent] : spawned) driver->NoteSpawned(name, parent);
               response.mutable_status()->set_status(pb::OK);
               response.mutable_status()->set_message("Accepted");
               std::move(respond)(Protobuf(200, response));
             });
}

void Api::Invoke(const HttpRequest& http, std::string_view path_system,
                 std::string_view path_actor, HttpResponder respond) const {
  if (invocations != nullptr) invocations->Add();
  Counter* errors = invocation_errors;
  SpawnDriver* driver = options.driver;
  pb::InvocationRequest request;
  auto fail = [&respond, &request, errors, driver](const absl::Status& status) {
    if (errors != nullptr) errors->Add();
    if (!request.caller().name().empty()) driver->NoteNestedFailure(request.caller().name(), status);
    std::move(respond)(InvocationError(status));
  };
  if (absl::Status decoded = Decode(http, request, "spawn.InvocationRequest"); !decoded.ok()) {
    return fail(decoded);
  }
  std::shared_ptr<const System> system = options.driver->system();
  if (system == nullptr) return fail(absl::UnavailableError("no actor system is registered yet"));
  const std::string system_name =
      request.system().name().empty() ? std::string(path_system) : request.system().name();
  if (system_name != system->name()) {
    return fail(absl::NotFoundError(absl::StrCat("actor system '", system_name,
                                                 "' is not served here (only '",
                                                 system->name(), "')")));
  }
  const std::string name =
      request.actor().id().name().empty() ? std::string(path_actor) : request.actor().id().name();
  absl::StatusOr<ResolvedActor> resolved = options.driver->Resolve(
      *system, name, request.actor().id().parent(), request.register_ref());
  if (!resolved.ok()) return fail(resolved.status());
  const Actor& actor = *resolved->actor;
  const std::string method = actor.MethodOf(request.action_name());
  if (method.empty()) {
    return fail(absl::NotFoundError(absl::StrCat("action ", request.action_name(),
                                                 " not found for actor ", name)));
  }

  Command command;
  command.service = actor.service;
  command.method = method;
  if (actor.definition.kind != ActorKind::kPooled) {
    command.entity_key = name;
    command.addressed = true;
  }
  for (const auto& [key, value] : request.metadata()) command.metadata.emplace_back(key, value);
  std::chrono::milliseconds timeout = options.default_timeout;
  if (auto it = request.metadata().find("request-timeout"); it != request.metadata().end()) {
    int64_t ms = 0;
    if (!absl::SimpleAtoi(it->second, &ms) || ms <= 0) {
      return fail(absl::InvalidArgumentError(absl::StrCat(
          "metadata request-timeout must be a positive number of milliseconds, not '",
          it->second, "'")));
    }
    timeout = std::chrono::milliseconds(ms);
  }
  command.deadline = Steady::now() + timeout;
  if (!request.caller().name().empty()) {
    command.metadata.emplace_back(kCallerMetadata, request.caller().name());
    // An invocation an SDK makes while handling one of its actor's commands joins that command's
    // chain: its deadline, hops, and the actors waiting (so a cycle is refused at once).
    if (std::optional<CallerInfo> caller = options.driver->InFlight(request.caller().name())) {
      command.call_chain = std::move(caller->call_chain);
      command.deadline = std::min(command.deadline, caller->deadline);
      command.hops = caller->hops + 1;
    }
  }
  const bool later = request.async() || request.scheduled_to() != 0;
  if (later) {
    // Accepted durably as a one-shot timer of the actor; the invocation runs from it.
    pb::InvocationRequest kept;
    kept.set_action_name(request.action_name());
    if (request.has_value()) *kept.mutable_value() = request.value();
    kept.set_scheduled_to(request.scheduled_to());
    google::protobuf::Any packed;
    packed.PackFrom(kept);
    command.method = kScheduleMethod;
    command.payload = packed.SerializeAsString();
  } else if (request.has_value()) {
    command.payload = request.value().SerializeAsString();
    if (IsNoop(command.payload)) command.payload.clear();
  }

  std::vector<Command> commands;
  if (resolved->spawn_first) {
    Command spawn;
    spawn.service = actor.service;
    spawn.entity_key = name;
    spawn.spawn = true;
    commands.push_back(std::move(spawn));
  }
  commands.push_back(std::move(command));
  pb::InvocationResponse response;
  response.mutable_system()->set_name(system->name());
  ::spawn::actors::ActorId& id = *response.mutable_actor()->mutable_id();
  id.set_name(name);
  id.set_system(system->name());
  if (actor.definition.kind == ActorKind::kUnnamed) id.set_parent(actor.definition.name);
  const bool spawned = resolved->spawn_first || actor.definition.kind == ActorKind::kUnnamed;
  const std::string parent = actor.definition.name;
  Command last = std::move(commands.back());
  commands.pop_back();
  Dispatcher& dispatcher = *options.dispatcher;
  // An invocation that an SDK makes from inside an action: its failure is noted for the
  // caller's command (SpawnDriver::NoteNestedFailure).
  const std::string caller = request.caller().name();
  RunInOrder(
      dispatcher, std::move(commands), 0,
      [&dispatcher, last = std::move(last), response = std::move(response), later, errors,
       driver, spawned, name, parent, caller,
       respond = std::move(respond)](absl::Status status) mutable {
        if (!status.ok()) {
          if (errors != nullptr) errors->Add();
          if (!caller.empty()) driver->NoteNestedFailure(caller, status);
          std::move(respond)(InvocationError(status));
          return;
        }
        dispatcher.Dispatch(
            std::move(last), [response = std::move(response), later, errors, driver, spawned,
                              name, parent, caller,
                              respond = std::move(respond)](CommandResult result) mutable {
              if (!result.status.ok()) {
                if (errors != nullptr) errors->Add();
                if (!caller.empty()) driver->NoteNestedFailure(caller, result.status);
                std::move(respond)(InvocationError(result.status));
                return;
              }
              if (spawned) driver->NoteSpawned(name, parent);
              response.mutable_status()->set_status(pb::OK);
              if (!later) {
                if (result.payload.empty() || IsNoop(result.payload)) {
                  response.mutable_noop();
                } else if (!response.mutable_value()->ParseFromString(result.payload)) {
                  std::move(respond)(InvocationError(
                      absl::InternalError("the actor's reply is not a google.protobuf.Any")));
                  return;
                }
              }
              std::move(respond)(Protobuf(200, response));
            });
      });
}

void Api::Handle(HttpRequest request, HttpResponder respond) const {
  std::string_view target = request.target;
  std::string_view query;
  if (size_t mark = target.find('?'); mark != std::string_view::npos) {
    query = target.substr(mark + 1);
    target = target.substr(0, mark);
  }
  if (request.method == "GET") {
    if (target == "/health" || target == "/health/liveness") {
      return std::move(respond)(Json(200, R"({"status":"up"})"));
    }
    if (target == "/health/readiness") {
      absl::Status ready = options.ready();
      return std::move(respond)(ready.ok() ? Json(200, R"({"status":"up"})")
                                           : Json(503, R"({"status":"down"})"));
    }
    if (target == "/metrics" && options.metrics != nullptr) {
      HttpResponse response;
      response.content_type = "text/plain; version=0.0.4";
      response.body = options.metrics->Render();
      return std::move(respond)(std::move(response));
    }
  }
  // /api/v1/system, /api/v1/system/{system}/actors/spawn, .../actors/{actor}/invoke
  const std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(target.data(), target.size()), '/', absl::SkipEmpty());
  const bool api = parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1" &&
                   parts[2] == "system";
  if (api && request.method == "POST") {
    if (parts.size() == 3) return Register(request, std::move(respond));
    if (parts.size() == 6 && parts[4] == "actors" && parts[5] == "spawn") {
      return Spawn(request, query, std::move(respond));
    }
    if (parts.size() == 7 && parts[4] == "actors" && parts[6] == "invoke") {
      return Invoke(request, std::string_view(parts[3].data(), parts[3].size()),
                    std::string_view(parts[5].data(), parts[5].size()), std::move(respond));
    }
  }
  HttpResponse response = Json(404, absl::StrCat(R"({"error":"no route for )", request.method,
                                                 " ", std::string(target), R"("})"));
  if (api) {
    response = InvocationError(absl::NotFoundError(
        absl::StrCat("no Spawn API route ", request.method, " ", std::string(target))));
    response.status = 404;
  }
  std::move(respond)(std::move(response));
}

}  // namespace

HttpHandler SidecarApi(SidecarOptions options) {
  auto api = std::make_shared<Api>();
  if (options.metrics != nullptr) {
    api->registrations = &options.metrics->AddCounter(
        "massa_spawn_registrations_total", "Actor systems Spawn SDKs registered.");
    api->invocations = &options.metrics->AddCounter(
        "massa_spawn_invocations_total", "Invocations received on the Spawn API.");
    api->invocation_errors = &options.metrics->AddCounter(
        "massa_spawn_invocation_errors_total", "Invocations on the Spawn API answered with ERROR.");
  }
  api->options = std::move(options);
  return [api](HttpRequest request, HttpResponder respond) {
    api->Handle(std::move(request), std::move(respond));
  };
}

}  // namespace massa::spawn

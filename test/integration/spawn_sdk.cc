#include "integration/spawn_sdk.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "google/protobuf/wrappers.pb.h"

namespace massa::testing {
namespace {

using ::spawn::actors::Actor;
using ::spawn::actors::ActorId;

constexpr char kOctetStream[] = "application/octet-stream";
constexpr int64_t kDefaultScheduleDelayMs = 1500;

std::string Varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

// Field `field` of wire type LEN holding `bytes`.
std::string LengthDelimited(int field, const std::string& bytes) {
  return Varint(static_cast<uint64_t>(field) << 3 | 2) + Varint(bytes.size()) + bytes;
}

ActorId Id(const std::string& name, const std::string& parent = "") {
  ActorId id;
  id.set_name(name);
  id.set_system(kSpawnSystem);
  if (!parent.empty()) id.set_parent(parent);
  return id;
}

// An actor of test-system with an empty ActorState, as real SDKs register them.
Actor MakeActor(const std::string& name, ::spawn::actors::Kind kind, bool stateful,
                const std::vector<std::string>& actions) {
  Actor actor;
  *actor.mutable_id() = Id(name);
  actor.mutable_state();
  actor.mutable_settings()->set_kind(kind);
  actor.mutable_settings()->set_stateful(stateful);
  if (stateful) actor.mutable_settings()->set_state_type("google.protobuf.Int64Value");
  for (const std::string& action : actions) actor.add_actions()->set_name(action);
  return actor;
}

Actor RoomActor() {
  Actor room = MakeActor("room", ::spawn::actors::UNNAMED, true, {"receive"});
  room.mutable_id()->set_parent("room");
  room.mutable_settings()->mutable_deactivation_strategy()->mutable_timeout()->set_timeout(100);
  return room;
}

HttpResponse Protobuf(const google::protobuf::Message& message) {
  return HttpResponse{200, kOctetStream, message.SerializeAsString(), {}};
}

HttpResponse Text(int status, const std::string& content_type, const std::string& body) {
  return HttpResponse{status, content_type, body, {}};
}

// The reply skeleton: the actor, and updated_context with the state and tags as they came.
::spawn::ActorInvocationResponse Base(const ::spawn::ActorInvocation& invocation) {
  ::spawn::ActorInvocationResponse reply;
  reply.set_actor_name(invocation.actor().name());
  reply.set_actor_system(invocation.actor().system());
  ::spawn::Context* context = reply.mutable_updated_context();
  if (invocation.current_context().has_state()) {
    *context->mutable_state() = invocation.current_context().state();
  }
  *context->mutable_tags() = invocation.current_context().tags();
  return reply;
}

int64_t Payload(const ::spawn::ActorInvocation& invocation) {
  if (!invocation.has_value()) return 0;
  return Int64Of(invocation.value()).value_or(0);
}

// state += n; the reply is the new total.
HttpResponse Add(const ::spawn::ActorInvocation& invocation, int64_t n) {
  ::spawn::ActorInvocationResponse reply = Base(invocation);
  int64_t total = 0;
  if (invocation.current_context().has_state()) {
    total = Int64Of(invocation.current_context().state()).value_or(0);
  }
  total += n;
  *reply.mutable_updated_context()->mutable_state() = Int64Any(total);
  *reply.mutable_value() = Int64Any(total);
  return Protobuf(reply);
}

// The invocation's payload back.
HttpResponse Echo(const ::spawn::ActorInvocation& invocation) {
  ::spawn::ActorInvocationResponse reply = Base(invocation);
  if (invocation.has_value()) {
    *reply.mutable_value() = invocation.value();
  } else {
    reply.mutable_noop();
  }
  return Protobuf(reply);
}

// A side effect: counter.add(n), async, from flow.
::spawn::InvocationRequest CounterAdd(int64_t n) {
  SpawnInvokeOptions options;
  options.value = n;
  options.async = true;
  options.caller = "flow";
  return MakeInvocationRequest("counter", "add", options);
}

HttpResponse Flow(const ::spawn::ActorInvocation& invocation) {
  const std::string& action = invocation.action_name();
  const int64_t n = Payload(invocation);
  ::spawn::ActorInvocationResponse reply = Base(invocation);
  if (action == "effects") {
    reply.mutable_noop();
    *reply.mutable_workflow()->add_effects()->mutable_request() = CounterAdd(n);
  } else if (action == "scheduled") {
    int64_t delay = kDefaultScheduleDelayMs;
    auto it = invocation.current_context().metadata().find("delay_ms");
    if (it != invocation.current_context().metadata().end()) delay = std::stoll(it->second);
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    ::spawn::InvocationRequest effect = CounterAdd(n);
    effect.set_scheduled_to(now + delay);
    reply.mutable_noop();
    *reply.mutable_workflow()->add_effects()->mutable_request() = std::move(effect);
  } else if (action == "broadcast") {
    reply.mutable_noop();
    ::spawn::Broadcast* broadcast = reply.mutable_workflow()->mutable_broadcast();
    broadcast->set_channel_group("news");
    *broadcast->mutable_value() = Int64Any(n);
  } else if (action == "pipe" || action == "pipe_fail") {
    *reply.mutable_value() = Int64Any(n);
    ::spawn::Pipe* pipe = reply.mutable_workflow()->mutable_pipe();
    pipe->set_actor("counter");
    pipe->set_action_name(action == "pipe" ? "add" : "fail");
  } else if (action == "forward") {
    reply.mutable_noop();
    ::spawn::Forward* forward = reply.mutable_workflow()->mutable_forward();
    forward->set_actor("counter");
    forward->set_action_name("add");
  } else {
    return Text(500, "text/plain", "flow has no action " + action);
  }
  return Protobuf(reply);
}

}  // namespace

google::protobuf::Any Int64Any(int64_t value) {
  google::protobuf::Int64Value wrapper;
  wrapper.set_value(value);
  google::protobuf::Any any;
  any.PackFrom(wrapper);
  return any;
}

std::optional<int64_t> Int64Of(const google::protobuf::Any& any) {
  google::protobuf::Int64Value wrapper;
  if (any.type_url() != kInt64TypeUrl || !any.UnpackTo(&wrapper)) return std::nullopt;
  return wrapper.value();
}

google::protobuf::Any OldJsonAny(const std::string& content) {
  ::spawn::JSONType json;
  json.set_content(content);
  google::protobuf::Any any;
  any.set_type_url(kOldJsonTypeUrl);
  any.set_value(json.SerializeAsString());
  return any;
}

std::optional<int64_t> SpawnInvocationRecord::value_int64() const {
  return value.has_value() ? Int64Of(*value) : std::nullopt;
}

std::optional<int64_t> SpawnInvocationRecord::state_int64() const {
  return state.has_value() ? Int64Of(*state) : std::nullopt;
}

::spawn::InvocationRequest MakeInvocationRequest(const std::string& actor,
                                                 const std::string& action,
                                                 const SpawnInvokeOptions& options) {
  ::spawn::InvocationRequest request;
  request.mutable_system()->set_name(options.system);
  ActorId* id = request.mutable_actor()->mutable_id();
  id->set_name(actor);
  id->set_system(options.system);
  if (!options.parent.empty()) id->set_parent(options.parent);
  request.set_action_name(action);
  if (options.any.has_value()) {
    *request.mutable_value() = *options.any;
  } else if (options.value.has_value()) {
    *request.mutable_value() = Int64Any(*options.value);
  } else if (!options.no_payload) {
    request.mutable_noop();
  }
  request.set_async(options.async);
  if (!options.caller.empty()) *request.mutable_caller() = Id(options.caller);
  for (const auto& [key, value] : options.metadata) (*request.mutable_metadata())[key] = value;
  request.set_scheduled_to(options.scheduled_to);
  request.set_register_ref(options.register_ref);
  return request;
}

std::optional<int64_t> SpawnInvokeResult::value_int64() const {
  return response.has_value() ? Int64Of(response.value()) : std::nullopt;
}

std::string SpawnInvokeResult::Describe() const {
  std::string out = "HTTP " + std::to_string(http_status) + " (" + content_type + ")";
  if (!decoded)
    return out + ", undecodable body of " + std::to_string(body.size()) + " bytes: " + body;
  out += ", status " + ::spawn::Status_Name(response.status().status()) + " \"" + message() + "\"";
  if (response.has_value()) {
    out += ", value " + response.value().type_url();
    if (std::optional<int64_t> v = value_int64()) out += " = " + std::to_string(*v);
  }
  if (response.has_noop()) out += ", noop";
  return out;
}

std::string ContentTypeOf(const HttpResult& result) {
  std::string lower = result.headers;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const std::string name = "content-type:";
  size_t at = lower.find(name);
  if (at == std::string::npos) return "";
  at += name.size();
  size_t end = result.headers.find_first_of("\r\n", at);
  std::string value = result.headers.substr(at, end == std::string::npos ? end : end - at);
  value.erase(0, value.find_first_not_of(' '));
  return value;
}

SpawnInvokeResult DecodeInvocationResponse(const HttpResult& result) {
  SpawnInvokeResult out;
  out.http_status = result.status;
  out.body = result.body;
  out.content_type = ContentTypeOf(result);
  out.decoded = result.status != 0 && out.response.ParseFromString(result.body);
  return out;
}

SpawnInvokeResult SpawnInvokeRaw(int spawn_port, const std::string& actor, const std::string& body,
                                 const std::string& content_type) {
  return DecodeInvocationResponse(
      HttpCall(spawn_port, "POST",
               std::string("/api/v1/system/") + kSpawnSystem + "/actors/" + actor + "/invoke", body,
               content_type));
}

SpawnInvokeResult SpawnInvoke(int spawn_port, const std::string& actor, const std::string& action,
                              const SpawnInvokeOptions& options) {
  return SpawnInvokeRaw(spawn_port, actor,
                        MakeInvocationRequest(actor, action, options).SerializeAsString(),
                        options.content_type);
}

SpawnRegisterResult PostRegistration(int spawn_port, const std::string& body) {
  HttpResult result = HttpCall(spawn_port, "POST", "/api/v1/system", body, kOctetStream);
  SpawnRegisterResult out;
  out.http_status = result.status;
  out.body = result.body;
  out.decoded = result.status != 0 && out.response.ParseFromString(result.body);
  return out;
}

SpawnSpawnResult SpawnActors(int spawn_port, const std::vector<std::string>& names,
                             const std::string& parent, const std::string& query) {
  ::spawn::SpawnRequest request;
  for (const std::string& name : names) *request.add_actors() = Id(name, parent);
  HttpResult result = HttpCall(
      spawn_port, "POST", std::string("/api/v1/system/") + kSpawnSystem + "/actors/spawn" + query,
      request.SerializeAsString(), kOctetStream);
  SpawnSpawnResult out;
  out.http_status = result.status;
  out.body = result.body;
  out.decoded = result.status != 0 && out.response.ParseFromString(result.body);
  return out;
}

std::unique_ptr<SpawnSdk> SpawnSdk::Start() {
  std::unique_ptr<SpawnSdk> sdk(new SpawnSdk());
  HttpServerOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 2;
  options.name = "spawn-sdk";
  SpawnSdk* raw = sdk.get();
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(options, [raw](HttpRequest request, HttpResponder respond) {
        raw->Handle(std::move(request), std::move(respond));
      });
  if (!server.ok()) return nullptr;
  sdk->server_ = std::move(*server);
  return sdk;
}

SpawnSdk::~SpawnSdk() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  // Actions still running answer while the server can still send; then the server stops, and
  // whatever started meanwhile is joined after.
  auto join_all = [this] {
    for (;;) {
      std::vector<std::thread> threads;
      {
        std::lock_guard<std::mutex> lock(mu_);
        threads.swap(threads_);
      }
      if (threads.empty()) return;
      for (std::thread& thread : threads) thread.join();
    }
  };
  join_all();
  if (server_) server_->Stop();
  join_all();
}

int SpawnSdk::port() const { return server_->port(); }

void SpawnSdk::set_spawn_port(int port) {
  std::lock_guard<std::mutex> lock(mu_);
  spawn_port_ = port;
}

::spawn::RegistrationRequest SpawnSdk::Registration() {
  ::spawn::RegistrationRequest request;
  ::spawn::ServiceInfo* info = request.mutable_service_info();
  info->set_service_name("massa-spawn-test");
  info->set_service_version("1.0.0");
  info->set_service_runtime("c++20");
  info->set_support_library_name("massa-test-sdk");
  info->set_support_library_version("1.0.0");
  info->set_protocol_major_version(1);
  info->set_protocol_minor_version(1);
  ::spawn::actors::ActorSystem* system = request.mutable_actor_system();
  system->set_name(kSpawnSystem);
  auto& actors = *system->mutable_registry()->mutable_actors();

  Actor counter = MakeActor("counter", ::spawn::actors::NAMED, true,
                            {"init", "add", "slow", "fail", "fail400", "garbage", "nocontext"});
  (*counter.mutable_state()->mutable_tags())["kind"] = "counter";
  actors["counter"] = std::move(counter);

  Actor worker = MakeActor("worker", ::spawn::actors::UNNAMED, true, {"add"});
  worker.mutable_id()->set_parent("worker");  // the Node SDK's way
  actors["worker"] = std::move(worker);

  Actor pool = MakeActor("pool", ::spawn::actors::POOLED, false, {"echo", "slow_echo"});
  pool.mutable_settings()->set_max_pool_size(2);
  actors["pool"] = std::move(pool);

  actors["flow"] =
      MakeActor("flow", ::spawn::actors::NAMED, false,
                {"effects", "scheduled", "broadcast", "pipe", "forward", "pipe_fail", "call_back"});
  actors["flow2"] = MakeActor("flow2", ::spawn::actors::NAMED, false, {"call_flow"});

  Actor listener = MakeActor("listener", ::spawn::actors::NAMED, true, {"on_news"});
  ::spawn::actors::Channel channel;
  channel.set_topic("news");
  channel.set_action("on_news");
  listener.mutable_metadata()->add_channel_group(channel.SerializeAsString());
  actors["listener"] = std::move(listener);

  Actor ticker = MakeActor("ticker", ::spawn::actors::NAMED, true, {});
  ::spawn::actors::FixedTimerAction* timer = ticker.add_timer_actions();
  timer->set_seconds(200);  // milliseconds, as the SDKs mean it
  timer->mutable_action()->set_name("tick");
  actors["ticker"] = std::move(ticker);

  Actor jsonish = MakeActor("jsonish", ::spawn::actors::NAMED, true, {"set"});
  jsonish.mutable_settings()->set_state_type("eigr.functions.protocol.JSONType");
  actors["jsonish"] = std::move(jsonish);
  return request;
}

std::string SpawnSdk::RegistrationBody(const ::spawn::RegistrationRequest& request) {
  // Actor.metadata (field 6) = Metadata{channel_group (field 1) = "news" as a string}.
  const std::string room =
      RoomActor().SerializeAsString() + LengthDelimited(6, LengthDelimited(1, "news"));
  // RegistrationRequest.actor_system (2) . registry (2) . actors (1, a map entry {1 key, 2 value}).
  const std::string entry = LengthDelimited(1, "room") + LengthDelimited(2, room);
  return request.SerializeAsString() +
         LengthDelimited(2, LengthDelimited(2, LengthDelimited(1, entry)));
}

SpawnRegisterResult SpawnSdk::Register(int spawn_port) const {
  return PostRegistration(spawn_port, RegistrationBody(Registration()));
}

std::vector<SpawnInvocationRecord> SpawnSdk::Invocations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

std::vector<SpawnInvocationRecord> SpawnSdk::Invocations(const std::string& actor,
                                                         const std::string& action) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<SpawnInvocationRecord> out;
  for (const SpawnInvocationRecord& record : log_) {
    if (record.actor == actor && (action.empty() || record.action == action)) {
      out.push_back(record);
    }
  }
  return out;
}

int SpawnSdk::init_count(const std::string& actor) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = init_count_.find(actor);
  return it == init_count_.end() ? 0 : it->second;
}

int SpawnSdk::max_overlap(const std::string& actor) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = max_overlap_.find(actor);
  return it == max_overlap_.end() ? 0 : it->second;
}

int SpawnSdk::pool_max_overlap() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pool_max_overlap_;
}

int SpawnSdk::pool_in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pool_in_flight_;
}

void SpawnSdk::Handle(HttpRequest request, HttpResponder respond) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  if (request.method != "POST" || path != "/api/v1/actors/actions") {
    std::move(respond)(Text(404, "text/plain", "no route " + request.method + " " + path));
    return;
  }
  ::spawn::ActorInvocation invocation;
  if (!invocation.ParseFromString(request.body)) {
    std::move(respond)(Text(400, "text/plain", "not an ActorInvocation"));
    return;
  }
  static const char* const kActors[] = {"counter",  "worker", "pool",   "flow",   "flow2",
                                        "listener", "room",   "ticker", "jsonish"};
  auto known = [](const std::string& name) {
    return std::find(std::begin(kActors), std::end(kActors), name) != std::end(kActors);
  };
  // Unnamed and pooled instances carry their template as parent.
  std::string type;
  if (known(invocation.actor().name())) {
    type = invocation.actor().name();
  } else if (known(invocation.actor().parent())) {
    type = invocation.actor().parent();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    SpawnInvocationRecord record;
    record.seq = ++seq_;
    record.received = std::chrono::steady_clock::now();
    record.actor = invocation.actor().name();
    record.system = invocation.actor().system();
    record.parent = invocation.actor().parent();
    record.action = invocation.action_name();
    record.noop = invocation.has_noop();
    if (invocation.has_value()) record.value = invocation.value();
    const ::spawn::Context& context = invocation.current_context();
    record.has_context = invocation.has_current_context();
    if (context.has_state()) record.state = context.state();
    record.tags.insert(context.tags().begin(), context.tags().end());
    record.metadata.insert(context.metadata().begin(), context.metadata().end());
    record.caller = invocation.caller().name();
    record.caller_system = invocation.caller().system();
    record.context_caller = context.caller().name();
    record.self = context.self().name();
    log_.push_back(std::move(record));
    int& now = in_flight_[invocation.actor().name()];
    ++now;
    int& max = max_overlap_[invocation.actor().name()];
    max = std::max(max, now);
    if (type == "pool") {
      ++pool_in_flight_;
      pool_max_overlap_ = std::max(pool_max_overlap_, pool_in_flight_);
    }
    if (type == "counter" && invocation.action_name() == "init") {
      ++init_count_[invocation.actor().name()];
    }
  }
  if (type.empty()) {
    Finish(invocation, type, Text(500, "text/plain", "unknown actor " + invocation.actor().name()),
           std::move(respond));
    return;
  }
  Dispatch(invocation, type, std::move(respond));
}

void SpawnSdk::Finish(const ::spawn::ActorInvocation& invocation, const std::string& type,
                      HttpResponse response, HttpResponder respond) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_[invocation.actor().name()];
    if (type == "pool") --pool_in_flight_;
  }
  std::move(respond)(std::move(response));
}

void SpawnSdk::Later(std::chrono::milliseconds delay, absl::AnyInvocable<void() &&> work) {
  std::lock_guard<std::mutex> guard(mu_);
  threads_.emplace_back([this, delay, work = std::move(work)]() mutable {
    {
      std::unique_lock<std::mutex> lock(mu_);
      stop_cv_.wait_for(lock, delay, [this] { return stopping_; });
    }
    std::move(work)();
  });
}

HttpResponse SpawnSdk::CallThrough(const ::spawn::ActorInvocation& invocation,
                                   const std::string& target, const std::string& action,
                                   const std::string& caller) {
  int port = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    port = spawn_port_;
  }
  SpawnInvokeOptions options;
  if (invocation.has_value()) options.any = invocation.value();
  options.caller = caller;
  SpawnInvokeResult result = SpawnInvoke(port, target, action, options);
  if (!result.ok()) {
    // As the Node SDK fails an action that threw: 400 with an empty body. Massa itself must
    // tell the outer caller why (a cycle refused further in).
    return Text(400, "text/plain", "");
  }
  ::spawn::ActorInvocationResponse reply = Base(invocation);
  if (result.response.has_value()) {
    *reply.mutable_value() = result.response.value();
  } else {
    reply.mutable_noop();
  }
  return Protobuf(reply);
}

void SpawnSdk::Dispatch(const ::spawn::ActorInvocation& invocation, const std::string& type,
                        HttpResponder respond) {
  const std::string& action = invocation.action_name();
  auto finish = [&](HttpResponse response) {
    Finish(invocation, type, std::move(response), std::move(respond));
  };
  // Runs `make` on a thread after `delay` and answers with what it returns.
  auto later = [&](std::chrono::milliseconds delay, auto make) {
    Later(delay,
          [this, invocation, type, make = std::move(make), respond = std::move(respond)]() mutable {
            Finish(invocation, type, make(invocation), std::move(respond));
          });
  };
  auto unknown = [&] { finish(Text(500, "text/plain", type + " has no action " + action)); };

  if (type == "counter") {
    if (action == "init") {
      ::spawn::ActorInvocationResponse reply = Base(invocation);
      (*reply.mutable_updated_context()->mutable_tags())["initialized"] = "yes";
      reply.mutable_noop();
      finish(Protobuf(reply));
    } else if (action == "add") {
      finish(Add(invocation, Payload(invocation)));
    } else if (action == "slow") {
      later(std::chrono::seconds(1),
            [](const ::spawn::ActorInvocation& in) { return Add(in, Payload(in)); });
    } else if (action == "fail") {
      finish(Text(500, "text/html", "<h1>boom</h1>"));  // the Python SDK (Werkzeug)
    } else if (action == "fail400") {
      finish(Text(400, "text/plain", ""));  // the Node SDK
    } else if (action == "garbage") {
      finish(Text(200, kOctetStream, std::string("\x01\x02") + "not protobuf"));
    } else if (action == "nocontext") {
      ::spawn::ActorInvocationResponse reply;
      reply.set_actor_name(invocation.actor().name());
      reply.set_actor_system(invocation.actor().system());
      *reply.mutable_value() = Int64Any(Payload(invocation));
      finish(Protobuf(reply));
    } else {
      unknown();
    }
  } else if (type == "worker" || type == "room" || type == "listener") {
    const char* expected = type == "worker" ? "add" : type == "room" ? "receive" : "on_news";
    if (action == expected) {
      finish(Add(invocation, Payload(invocation)));
    } else {
      unknown();
    }
  } else if (type == "ticker") {
    if (action == "tick") {
      finish(Add(invocation, 1));
    } else {
      unknown();
    }
  } else if (type == "pool") {
    if (action == "echo") {
      finish(Echo(invocation));
    } else if (action == "slow_echo") {
      later(std::chrono::milliseconds(300),
            [](const ::spawn::ActorInvocation& in) { return Echo(in); });
    } else {
      unknown();
    }
  } else if (type == "flow") {
    if (action == "call_back") {
      later(std::chrono::milliseconds(0), [this](const ::spawn::ActorInvocation& in) {
        return CallThrough(in, "flow2", "call_flow", "flow");
      });
    } else {
      finish(Flow(invocation));
    }
  } else if (type == "flow2") {
    if (action == "call_flow") {
      later(std::chrono::milliseconds(0), [this](const ::spawn::ActorInvocation& in) {
        return CallThrough(in, "flow", "effects", "flow2");
      });
    } else {
      unknown();
    }
  } else if (type == "jsonish") {
    if (action == "set") {
      ::spawn::ActorInvocationResponse reply = Base(invocation);
      if (invocation.has_value()) {
        *reply.mutable_updated_context()->mutable_state() = invocation.value();
      }
      google::protobuf::Any noop;
      noop.set_type_url(kOldNoopTypeUrl);
      *reply.mutable_value() = noop;
      reply.mutable_workflow();  // an empty workflow {}, as the Node SDK sends
      finish(Protobuf(reply));
    } else {
      unknown();
    }
  } else {
    unknown();
  }
}

}  // namespace massa::testing

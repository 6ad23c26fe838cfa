// The mesh function of the call tests (test/integration/mesh_test.cc): nodes that call other
// nodes with ctx.Call in the middle of their handlers. Calls need handler threads, so run it
// with --handler-threads N (without, every call fails with FAILED_PRECONDITION, which a test
// checks too). Usage: mesh-function --listen ADDRESS [--handler-threads N]
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "massa/sdk/function.h"
#include "massa/test/mesh.pb.h"

namespace mesh = massa::test::mesh;
using massa::sdk::ActionContext;
using massa::sdk::Result;
using massa::sdk::ValueContext;

namespace {

constexpr char kNode[] = "massa.test.mesh.Node";
constexpr char kRoom[] = "massa.test.mesh.Room";
constexpr char kHub[] = "massa.test.mesh.Hub";

std::atomic<int> pool_running{0};

mesh::HubState One() {
  mesh::HubState one;
  one.set_echoed(1);
  return one;
}

}  // namespace

int main(int argc, char** argv) {
  massa::sdk::Function function("mesh-function");
  function.AddValueEntity<mesh::NodeState>(kNode)
      .Handle("Relay",
              [](ValueContext<mesh::NodeState>& ctx,
                 const mesh::RelayRequest& request) -> Result<mesh::RelayReply> {
                mesh::RelayReply reply;
                if (request.then_size() > 0) {
                  mesh::RelayRequest next;
                  next.set_node_id(request.then(0));
                  next.mutable_then()->CopyFrom(request.then());
                  next.mutable_then()->erase(next.mutable_then()->begin());
                  next.set_sleep_ms(request.sleep_ms());
                  next.set_peek(request.peek());
                  next.set_peek_method(request.peek_method());
                  Result<mesh::RelayReply> called =
                      ctx.Call<mesh::RelayReply>(kNode, "Relay", next);
                  if (called.is_failure()) return called.failure();
                  reply = std::move(called).reply();
                } else if (request.sleep_ms() > 0) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(request.sleep_ms()));
                }
                if (request.then_size() == 0 && !request.peek().empty()) {
                  mesh::GetNode get;
                  get.set_node_id(request.peek());
                  Result<mesh::NodeState> peeked =
                      ctx.Call<mesh::NodeState>(kNode, request.peek_method(), get);
                  if (peeked.is_failure()) return peeked.failure();
                  reply.add_visited("peek:" + request.peek() + ":" +
                                    std::to_string(peeked.reply().relays()));
                }
                ctx.mutable_state().set_relays(ctx.state().relays() + 1);
                reply.add_visited(request.node_id() + ":" +
                                  std::to_string(ctx.state().relays()));
                return reply;
              })
      .Handle("Get", [](ValueContext<mesh::NodeState>& ctx, const mesh::GetNode&)
                         -> Result<mesh::NodeState> { return ctx.state(); })
      .Handle("Peek", [](ValueContext<mesh::NodeState>& ctx, const mesh::GetNode&)
                          -> Result<mesh::NodeState> { return ctx.state(); })
      .Handle("BadPeek", [](ValueContext<mesh::NodeState>& ctx, const mesh::GetNode&)
                             -> Result<mesh::NodeState> {
        ctx.mutable_state().set_relays(ctx.state().relays() + 100);
        return ctx.state();
      })
      .Handle("Tell", [](ValueContext<mesh::NodeState>& ctx,
                         const mesh::TellRequest& request) -> Result<mesh::NodeState> {
        mesh::GetNode poke;
        poke.set_node_id(request.to());
        ctx.Send(kNode, "Poke", poke);
        ctx.mutable_state().set_relays(ctx.state().relays() + 1);
        return ctx.state();
      })
      .Handle("Poke", [](ValueContext<mesh::NodeState>& ctx, const mesh::GetNode&)
                          -> Result<mesh::NodeState> {
        ctx.mutable_state().set_pokes(ctx.state().pokes() + 1);
        return ctx.state();
      })
      .Handle("Hear", [](ValueContext<mesh::NodeState>& ctx, const mesh::NodeNews&)
                          -> Result<mesh::NodeState> {
        ctx.mutable_state().set_news(ctx.state().news() + 1);
        return ctx.state();
      })
      .Handle("Loop", [](ValueContext<mesh::NodeState>& ctx,
                         const mesh::GetNode& request) -> Result<mesh::NodeState> {
        return ctx.Forward(kNode, "Loop", request);
      })
      .Handle("Refuse", [](ValueContext<mesh::NodeState>&, const mesh::GetNode& request)
                            -> Result<mesh::NodeState> {
        return massa::sdk::Fail("refused by " + request.node_id());
      })
      .Handle("ForwardToRefuse", [](ValueContext<mesh::NodeState>& ctx,
                                    const mesh::GetNode& request) -> Result<mesh::NodeState> {
        mesh::GetNode other;
        other.set_node_id(request.node_id() + "-target");
        return ctx.Forward(kNode, "Refuse", other);
      })
      .Handle("PipeTo", [](ValueContext<mesh::NodeState>& ctx,
                           const mesh::PipeRequest& request) -> Result<mesh::HubState> {
        ctx.mutable_state().set_relays(ctx.state().relays() + 1);
        return ctx.Pipe(One(), kHub, request.method());
      })
      .Subscribe("news", "Hear");
  function.AddEventSourcedEntity<mesh::TallyState>("massa.test.mesh.Tally")
      .Handle("PipeTo", [](massa::sdk::EventContext<mesh::TallyState>& ctx,
                           const mesh::PipeRequest& request) -> Result<mesh::HubState> {
        ctx.Emit(mesh::Tallied());
        return ctx.Pipe(One(), kHub, request.method());
      })
      .OnEvent([](mesh::TallyState& state, const mesh::Tallied&) {
        state.set_count(state.count() + 1);
      });
  function
      .AddValueEntity<mesh::RoomState>(
          kRoom, massa::sdk::EntityOptions{.passivation_timeout = std::chrono::milliseconds(300),
                                           .spawned = true})
      .Handle("Post", [](ValueContext<mesh::RoomState>& ctx, const mesh::Note&)
                          -> Result<mesh::RoomState> {
        ctx.mutable_state().set_notes(ctx.state().notes() + 1);
        return ctx.state();
      })
      .Handle("Get", [](ValueContext<mesh::RoomState>& ctx, const mesh::GetRoom&)
                         -> Result<mesh::RoomState> { return ctx.state(); })
      .Handle("Hear", [](ValueContext<mesh::RoomState>& ctx, const mesh::News&)
                          -> Result<mesh::RoomState> {
        ctx.mutable_state().set_news(ctx.state().news() + 1);
        return ctx.state();
      })
      .Subscribe("news", "Hear");
  function
      .AddValueEntity<mesh::HubState>(kHub, massa::sdk::EntityOptions{.actor_name = "hub"})
      .Handle("Hear", [](ValueContext<mesh::HubState>& ctx, const mesh::News&)
                          -> Result<mesh::HubState> {
        ctx.mutable_state().set_news(ctx.state().news() + 1);
        return ctx.state();
      })
      .Handle("Echoed", [](ValueContext<mesh::HubState>& ctx, const mesh::News&)
                            -> Result<mesh::HubState> {
        ctx.mutable_state().set_echoed(ctx.state().echoed() + 1);
        return ctx.state();
      })
      .Handle("Get", [](ValueContext<mesh::HubState>& ctx, const mesh::GetRoom&)
                         -> Result<mesh::HubState> { return ctx.state(); })
      .Handle("Absorb", [](ValueContext<mesh::HubState>& ctx, const mesh::HubState& more)
                            -> Result<mesh::HubState> {
        ctx.mutable_state().set_echoed(ctx.state().echoed() + more.echoed());
        return ctx.state();
      })
      .Handle("Reject", [](ValueContext<mesh::HubState>&, const mesh::HubState&)
                            -> Result<mesh::HubState> { return massa::sdk::Fail("rejected by hub"); })
      .Subscribe("news", "Hear");
  function.AddAction("massa.test.mesh.Pool", massa::sdk::ActionOptions{.max_concurrency = 2})
      .Handle("Work", [](ActionContext&, const mesh::Work& request) -> Result<mesh::WorkReply> {
        mesh::WorkReply reply;
        reply.set_running(++pool_running);
        std::this_thread::sleep_for(std::chrono::milliseconds(request.sleep_ms()));
        --pool_running;
        return reply;
      });
  function.AddAction("massa.test.mesh.Front")
      .Handle("Start", [](ActionContext& ctx,
                          const mesh::RelayRequest& request) -> Result<mesh::RelayReply> {
        return ctx.Call<mesh::RelayReply>(kNode, "Relay", request);
      })
      .Handle("Spawn", [](ActionContext& ctx, const mesh::SpawnRoom& request)
                           -> Result<mesh::Empty> {
        massa::sdk::Status spawned = ctx.Spawn(kRoom, request.name());
        if (!spawned.ok()) return massa::sdk::Fail(spawned.code(), spawned.message());
        return mesh::Empty();
      })
      .Handle("Announce", [](ActionContext& ctx, const mesh::News& news) -> Result<mesh::Empty> {
        ctx.Publish("news", news);
        mesh::NodeNews node_news;
        node_news.set_node_id("n1");
        node_news.set_text(news.text());
        ctx.Publish("news", node_news);
        return mesh::Empty();
      })
      .Handle("Echo", [](ActionContext& ctx, const mesh::News& news) -> Result<mesh::Empty> {
        ctx.Send(kHub, "Echoed", news);
        return mesh::Empty();
      })
      .Handle("ForwardToRefuse", [](ActionContext& ctx, const mesh::GetNode& request)
                                     -> Result<mesh::NodeState> {
        return ctx.Forward(kNode, "Refuse", request);
      })
      .Handle("PipeTo", [](ActionContext& ctx, const mesh::PipeRequest& request)
                            -> Result<mesh::HubState> {
        return ctx.Pipe(One(), kHub, request.method());
      })
      .Subscribe("news", "Echo");
  return function.Run(argc, argv);
}

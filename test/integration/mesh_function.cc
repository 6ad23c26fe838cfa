// The mesh function of the call tests (test/integration/mesh_test.cc): nodes that call other
// nodes with ctx.Call in the middle of their handlers. Calls need handler threads, so run it
// with --handler-threads N (without, every call fails with FAILED_PRECONDITION, which a test
// checks too). Usage: mesh-function --listen ADDRESS [--handler-threads N]
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
      });
  function.AddAction("massa.test.mesh.Front")
      .Handle("Start", [](ActionContext& ctx,
                          const mesh::RelayRequest& request) -> Result<mesh::RelayReply> {
        return ctx.Call<mesh::RelayReply>(kNode, "Relay", request);
      });
  return function.Run(argc, argv);
}

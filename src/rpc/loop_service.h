// File: rpc/loop_service.h
//
// Services served with gRPC's asynchronous API on a CqLoop (cq_loop.h), and a helper for their
// unary methods. Massa serves nothing with gRPC's callback or synchronous APIs: either would
// start gRPC threads of its own, which poll the same sockets as the loop's threads and hand
// calls over between threads (several context switches per call).
//
// Example:
//   class AdminService final : public rpc::LoopService {
//     grpc::Service* service() override { return &async_; }
//     void Start(rpc::CqLoop& loop) override {
//       rpc::ServeUnary(async_, &Admin::AsyncService::RequestGetSpec, loop,
//                       [this](const GetSpecRequest&, GetSpecResponse* out) {
//                         *out = spec_;
//                         return grpc::Status::OK;
//                       });
//     }
//     Admin::AsyncService async_;
//   };
#pragma once

#include <functional>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/async_unary_call.h"
#include "rpc/cq_loop.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace massa::rpc {

// A service whose calls run on a CqLoop. Register service() on the builder that made the loop;
// Start once the server is built. Pending requests complete when the server shuts down and the
// loop drains; each call releases itself then.
class LoopService {
 public:
  virtual ~LoopService() = default;
  virtual grpc::Service* service() = 0;
  // Starts taking calls on every queue of `loop` (a loop of server queues).
  virtual void Start(CqLoop& loop) = 0;
};

// The generated AsyncService's RequestFoo of a unary method Foo.
template <typename Service, typename Request, typename Response>
using RequestMethod = void (Service::*)(grpc::ServerContext*, Request*,
                                        grpc::ServerAsyncResponseWriter<Response>*,
                                        grpc::CompletionQueue*, grpc::ServerCompletionQueue*,
                                        void*);

// One unary call: its handler gets the request and a `reply` to call exactly once, then or later
// and from any thread, with the status and the response.
template <typename Service, typename Request, typename Response>
class AsyncUnaryCall final : public CqTag {
 public:
  using Reply = absl::AnyInvocable<void(grpc::Status, Response) &&>;
  using Handler = std::function<void(const Request&, Reply)>;

  static void Post(Service& service, RequestMethod<Service, Request, Response> method,
                   CqLoop& loop, size_t i, std::shared_ptr<Handler> handler) {
    auto* call = new AsyncUnaryCall(service, method, loop, i, std::move(handler));
    (service.*method)(&call->context_, &call->request_, &call->writer_, loop.queue(i),
                      loop.server_queue(i), call);
  }

  void OnComplete(bool ok) override {
    if (!ok || answered_) {  // shutting down, or the answer is written
      delete this;
      return;
    }
    Post(service_, method_, loop_, queue_, handler_);
    answered_ = true;
    (*handler_)(request_, [this](grpc::Status status, Response response) {
      response_ = std::move(response);
      if (status.ok()) {
        writer_.Finish(response_, status, this);
      } else {
        writer_.FinishWithError(status, this);
      }
    });
  }

 private:
  AsyncUnaryCall(Service& service, RequestMethod<Service, Request, Response> method,
                 CqLoop& loop, size_t queue, std::shared_ptr<Handler> handler)
      : service_(service),
        method_(method),
        loop_(loop),
        queue_(queue),
        handler_(std::move(handler)),
        writer_(&context_) {}

  Service& service_;
  RequestMethod<Service, Request, Response> method_;
  CqLoop& loop_;
  const size_t queue_;
  std::shared_ptr<Handler> handler_;
  grpc::ServerContext context_;
  Request request_;
  Response response_;
  grpc::ServerAsyncResponseWriter<Response> writer_;
  bool answered_ = false;
};

template <typename Service, typename Request, typename Response, typename F>
void ServeUnaryAsync(Service& service, RequestMethod<Service, Request, Response> method,
                     CqLoop& loop, F handler) {
  auto shared = std::make_shared<typename AsyncUnaryCall<Service, Request, Response>::Handler>(
      std::move(handler));
  for (size_t i = 0; i < loop.size(); ++i) {
    AsyncUnaryCall<Service, Request, Response>::Post(service, method, loop, i, shared);
  }
}

// Serves one unary method: `request` is the generated AsyncService's RequestFoo, `handler`
// fills the response and returns the status; it runs on the loop's thread and must not block.
template <typename Service, typename Request, typename Response, typename F>
void ServeUnary(Service& service, RequestMethod<Service, Request, Response> method, CqLoop& loop,
                F handler) {
  ServeUnaryAsync(service, method, loop,
                  [handler = std::move(handler)](
                      const Request& request,
                      typename AsyncUnaryCall<Service, Request, Response>::Reply reply) {
                    Response response;
                    grpc::Status status = handler(request, &response);
                    std::move(reply)(std::move(status), std::move(response));
                  });
}

}  // namespace massa::rpc

#include "entity/router.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "entity/catalog.h"
#include "entity/entity_runtime.h"

namespace massa {

void Router::Dispatch(Command command, ResultCallback done) {
  const MethodInfo* method = catalog_.FindMethod(command.service, command.method);
  if (method == nullptr) {
    std::string what = catalog_.FindService(command.service) == nullptr
                           ? absl::StrCat("unknown service '", command.service, "'")
                           : absl::StrCat("unknown method '", command.method, "' of service '",
                                          command.service, "'");
    std::move(done)(CommandResult{absl::UnimplementedError(what), {}, {}});
    return;
  }
  if (method->streaming) {
    std::move(done)(CommandResult{
        absl::UnimplementedError(absl::StrCat("streaming method ", method->path,
                                              " is not served (only unary methods are)")),
        {},
        {}});
    return;
  }
  if (command.hops > kMaxHops) {
    std::move(done)(CommandResult{
        absl::FailedPreconditionError(absl::StrCat(
            "more than ", kMaxHops, " forwards and side effects in one chain, at ", method->path)),
        {},
        {}});
    return;
  }
  absl::StatusOr<std::string> key = catalog_.ExtractKey(*method, command.payload);
  if (!key.ok()) {
    std::move(done)(CommandResult{
        absl::InvalidArgumentError(absl::StrCat(method->path, ": ", key.status().message())),
        {},
        {}});
    return;
  }
  command.entity_key = *std::move(key);
  command.request_type = method->request_type;
  runtime_.Submit(*method, std::move(command), std::move(done));
}

}  // namespace massa

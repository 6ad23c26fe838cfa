#include "store/postgres/libpq.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

#include "massa/common/status.h"

namespace massa::store::postgres {
namespace {

constexpr char kLibrary[] = "libpq.so.5";

Libpq* loaded = nullptr;

absl::Status Load() {
  void* handle = ::dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return absl::FailedPreconditionError(
        std::string("the PostgreSQL store needs ") + kLibrary +
        " (Debian/Ubuntu package libpq5), which cannot be loaded: " + (why ? why : "unknown"));
  }
  auto* functions = new Libpq();  // kept for the life of the process, like the library
  const char* missing = nullptr;
#define MASSA_LIBPQ_FUNCTION(name)                                                         \
  functions->name = reinterpret_cast<decltype(&::name)>(::dlsym(handle, #name));           \
  if (functions->name == nullptr && missing == nullptr) missing = #name;
#include "store/postgres/libpq_functions.inc"
#undef MASSA_LIBPQ_FUNCTION
  if (missing != nullptr) {
    delete functions;
    return absl::FailedPreconditionError(std::string(kLibrary) + " has no " + missing +
                                         " (the PostgreSQL store needs libpq 14 or newer)");
  }
  loaded = functions;
  return absl::OkStatus();
}

}  // namespace

absl::Status LoadLibpq() {
  static std::once_flag once;
  static absl::Status status;
  std::call_once(once, [] { status = Load(); });
  return status;
}

const Libpq& Pq() {
  MASSA_CHECK(loaded != nullptr);
  return *loaded;
}

}  // namespace massa::store::postgres

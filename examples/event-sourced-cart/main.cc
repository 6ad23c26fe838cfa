// The event-sourced shopping cart example function. Usage:
//   event-sourced-cart-function [--listen ADDRESS] [--snapshot-every N]
//                               [--delete-events-on-snapshot]
// The journal flags go into the ShoppingCart service's spec; --listen (and --help) are the
// SDK's (Function::Run).
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "cart.h"
#include "massa/sdk/function.h"

namespace {

constexpr std::string_view kSnapshotEvery = "--snapshot-every";
constexpr std::string_view kDeleteEvents = "--delete-events-on-snapshot";

void PrintJournalUsage() {
  std::printf(
      "  --snapshot-every N           store a snapshot every N events (default 0: massa's)\n"
      "  --delete-events-on-snapshot  delete the events a stored snapshot covers\n");
}

// Parses N of --snapshot-every; false if it is not a number in [0, 2^32).
bool ParseCount(const char* text, uint32_t& out) {
  if (text == nullptr || *text < '0' || *text > '9') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || value > std::numeric_limits<uint32_t>::max()) return false;
  out = static_cast<uint32_t>(value);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  massa::sdk::EventSourcedOptions options;
  std::vector<char*> rest = {argv[0]};  // what Function::Run parses
  bool help = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == kDeleteEvents) {
      options.delete_events_on_snapshot = true;
    } else if (arg == kSnapshotEvery || arg.rfind(std::string(kSnapshotEvery) + "=", 0) == 0) {
      const char* value = arg == kSnapshotEvery ? (i + 1 < argc ? argv[++i] : nullptr)
                                                : argv[i] + kSnapshotEvery.size() + 1;
      if (!ParseCount(value, options.snapshot_every)) {
        std::fprintf(stderr, "%s: --snapshot-every needs a count of events, got '%s'\n", argv[0],
                     value == nullptr ? "" : value);
        return 2;
      }
    } else {
      help |= arg == "-h" || arg == "--help";
      rest.push_back(argv[i]);
    }
  }
  rest.push_back(nullptr);

  massa::sdk::Function function("event-sourced-cart", "0.1.0");
  example::escart::RegisterShoppingCart(function, options);
  const int code = function.Run(static_cast<int>(rest.size()) - 1, rest.data());
  if (help && code == 0) PrintJournalUsage();  // after Run's usage
  return code;
}

// The CRDT library's merge cost: for each type, deltas made by 3 replicas (one operation each)
// are merged into a fourth replica's value; prints ns per merged delta and the value's size,
// and appends one JSON record per type to --json-out. Not a test: nothing is asserted.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "crdt/crdt.h"

namespace {

using massa::crdt::Crdt;
using massa::crdt::Operation;
using massa::crdt::Type;

// The operation number `i` for a value of `type` (sets and maps cycle through 100 elements,
// removing half of what they add).
Operation OperationFor(Type type, int i) {
  const std::string element = "e" + std::to_string(i % 100);
  switch (type) {
    case Type::kGCounter:
    case Type::kPNCounter:
      return massa::crdt::Increment{1};
    case Type::kGSet:
      return massa::crdt::SetChange{false, {}, {element}};
    case Type::kORSet:
      if (i % 2 == 1) return massa::crdt::SetChange{false, {element}, {}};
      return massa::crdt::SetChange{false, {}, {element}};
    case Type::kLWWRegister:
      return massa::crdt::Assign{element};
    case Type::kFlag:
      return massa::crdt::Enable{};
    case Type::kVote:
      return massa::crdt::CastVote{i % 2 == 0};
    case Type::kORMap: {
      massa::crdt::MapChange change;
      change.update.push_back(
          massa::crdt::MapUpdate::Of(element, Type::kPNCounter, massa::crdt::Increment{1}));
      return change;
    }
  }
  return massa::crdt::Increment{1};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("massa-crdt-bench: merge cost per delta of each CRDT type");
  int deltas = 100000;
  std::string json_out;
  app.add_option("--deltas", deltas, "deltas merged per type")->check(CLI::Range(1, 10000000));
  app.add_option("--json-out", json_out, "append one JSON record per type to this file");
  CLI11_PARSE(app, argc, argv);

  std::FILE* out = json_out.empty() ? nullptr : std::fopen(json_out.c_str(), "a");
  const char* replicas[] = {"r1", "r2", "r3"};
  for (Type type : {Type::kGCounter, Type::kPNCounter, Type::kGSet, Type::kORSet,
                    Type::kLWWRegister, Type::kFlag, Type::kORMap, Type::kVote}) {
    std::vector<Crdt> sources(3, Crdt(type));
    std::vector<Crdt> made;
    made.reserve(static_cast<size_t>(deltas));
    for (int i = 0; i < deltas; ++i) {
      auto delta = sources[i % 3].Apply(OperationFor(type, i / 3), replicas[i % 3], 1000 + i);
      if (delta.ok()) made.push_back(*std::move(delta));
    }
    Crdt target(type);
    const auto started = std::chrono::steady_clock::now();
    for (const Crdt& delta : made) (void)target.Merge(delta);
    const double ns = std::chrono::duration<double, std::nano>(
                          std::chrono::steady_clock::now() - started).count() /
                      static_cast<double>(made.size());
    std::printf("%-12s %9.0f ns per merged delta, value %zu bytes after %zu deltas\n",
                massa::crdt::TypeName(type), ns, target.ByteSize(), made.size());
    if (out != nullptr) {
      std::fprintf(out,
                   "{\"scenario\":\"merge-%s\",\"deltas\":%zu,\"ns_per_delta\":%.1f,"
                   "\"value_bytes\":%zu}\n",
                   massa::crdt::TypeName(type), made.size(), ns, target.ByteSize());
    }
  }
  if (out != nullptr) std::fclose(out);
  return 0;
}

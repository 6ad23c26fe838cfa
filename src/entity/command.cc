#include "massa/entity/command.h"

namespace massa {

const char* EntityKindName(EntityKind kind) {
  switch (kind) {
    case EntityKind::kAction:
      return "action";
    case EntityKind::kValueEntity:
      return "value_entity";
    case EntityKind::kEventSourced:
      return "event_sourced";
    case EntityKind::kCrdt:
      return "crdt";
  }
  return "unknown";
}

}  // namespace massa

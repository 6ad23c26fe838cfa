// File: crdt/change.h
//
// What the handler of a CRDT entity's command asks of the entity's value: one operation of the
// CRDT library (crdt.h), or deleting the entity. Carried from the protocol driver to the
// runtime in Outcome::crdt.
#pragma once

#include <optional>

#include "crdt/crdt.h"

namespace massa {

// How many replicas must hold a change before the reply. One node: all mean this node.
enum class WriteConsistency { kLocal, kMajority, kAll };

struct CrdtChange {
  std::optional<crdt::Operation> operation;  // nullopt: the value is unchanged
  // The data type the operation was written for (the wire names it): the runtime refuses an
  // operation for another type than the entity's, naming both.
  crdt::Type operation_type{};
  bool remove = false;                       // delete the entity (with or without operation)
  WriteConsistency consistency = WriteConsistency::kLocal;
};

}  // namespace massa

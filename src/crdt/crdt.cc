#include "crdt/crdt.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "crdt/state.h"

namespace massa::crdt {

using internal::State;

const char* TypeName(Type type) {
  switch (type) {
    case Type::kGCounter: return "GCounter";
    case Type::kPNCounter: return "PNCounter";
    case Type::kGSet: return "GSet";
    case Type::kORSet: return "ORSet";
    case Type::kLWWRegister: return "LWWRegister";
    case Type::kFlag: return "Flag";
    case Type::kORMap: return "ORMap";
    case Type::kVote: return "Vote";
  }
  return "unknown type";
}

MapUpdate MapUpdate::Of(Bytes key, Type type, Operation operation) {
  return MapUpdate{std::move(key), type, std::make_shared<const Operation>(std::move(operation))};
}

bool operator==(const Value& a, const Value& b) {
  return a.type == b.type && a.counter == b.counter && a.elements == b.elements &&
         a.register_value == b.register_value && a.flag == b.flag && a.vote == b.vote &&
         a.entries == b.entries;
}

Crdt::Crdt(Type type) : state_(std::make_unique<State>(type)) {}
Crdt::Crdt(std::unique_ptr<State> state) : state_(std::move(state)) {}
Crdt::Crdt(const Crdt& other) : state_(std::make_unique<State>(*other.state_)) {}
Crdt& Crdt::operator=(const Crdt& other) {
  if (this != &other) state_ = std::make_unique<State>(*other.state_);
  return *this;
}
// A moved-from Crdt holds the empty value of its type.
Crdt::Crdt(Crdt&& other) noexcept
    : state_(std::exchange(other.state_, std::make_unique<State>(other.state_->type))) {}
Crdt& Crdt::operator=(Crdt&& other) noexcept {
  if (this != &other) {
    state_ = std::exchange(other.state_, std::make_unique<State>(other.state_->type));
  }
  return *this;
}
Crdt::~Crdt() = default;

Type Crdt::type() const { return state_->type; }

absl::StatusOr<Crdt> Crdt::Apply(const Operation& op, std::string_view replica, int64_t now_ms) {
  if (replica.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a change to ", internal::WithArticle(type()), " names no replica"));
  }
  auto delta = std::make_unique<State>(type());
  absl::Status applied = internal::ApplyTo(
      *state_, op, internal::Writer{replica, std::string(replica)}, now_ms, *delta);
  if (!applied.ok()) return applied;
  return Crdt(std::move(delta));
}

absl::Status Crdt::Merge(const Crdt& other) {
  if (other.type() != type()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot merge ",
                                                   internal::WithArticle(other.type()), " into ",
                                                   internal::WithArticle(type())));
  }
  if (&other != this) internal::MergeInto(*state_, *other.state_);
  return absl::OkStatus();
}

Value Crdt::value(std::string_view replica) const { return internal::ValueOf(*state_, replica); }

bool Crdt::empty() const { return *state_ == State(type()); }

std::string Crdt::Serialize() const { return internal::Encode(*state_); }

absl::StatusOr<Crdt> Crdt::Parse(std::string_view bytes) {
  absl::StatusOr<State> state = internal::Decode(bytes);
  if (!state.ok()) return state.status();
  return Crdt(std::make_unique<State>(*std::move(state)));
}

size_t Crdt::ByteSize() const { return Serialize().size(); }

bool operator==(const Crdt& a, const Crdt& b) { return *a.state_ == *b.state_; }

}  // namespace massa::crdt

// The CRDT handles' core (massa/sdk/crdt.h): reads combine the value Massa sent with the change
// the handler asked for so far, and changes accumulate into the one CrdtDelta of the response.
#include "massa/sdk/crdt.h"

#include <algorithm>
#include <string>

#include "google/protobuf/any.pb.h"
#include "registry.h"

namespace massa::sdk::detail {
namespace {

namespace v1 = protocol::v1;
namespace pb = google::protobuf;

const char* CrdtTypeName(CrdtType type) {
  switch (type) {
    case CrdtType::kGCounter: return "GCounter";
    case CrdtType::kPNCounter: return "PNCounter";
    case CrdtType::kGSet: return "GSet";
    case CrdtType::kORSet: return "ORSet";
    case CrdtType::kLWWRegister: return "LWWRegister";
    case CrdtType::kFlag: return "Flag";
    case CrdtType::kORMap: return "ORMap";
    case CrdtType::kVote: return "Vote";
  }
  return "unknown";
}

pb::Any Pack(const pb::Message& message) {
  pb::Any any;
  any.PackFrom(message);
  return any;
}

bool Same(const pb::Any& a, const pb::Any& b) {
  return a.type_url() == b.type_url() && a.value() == b.value();
}

// Removes from `items` every Any equal to `item`; whether there was one.
template <typename Items>
bool Erase(Items& items, const pb::Any& item) {
  const int before = items.size();
  for (int i = items.size() - 1; i >= 0; --i) {
    if (Same(items.Get(i), item)) items.DeleteSubrange(i, 1);
  }
  return items.size() != before;
}

std::string_view TypeNameOfUrl(std::string_view url) {
  const size_t slash = url.rfind('/');
  return slash == std::string_view::npos ? url : url.substr(slash + 1);
}

// The ORMap entry delta for `key`, created (as a PNCounter change) when absent.
v1::CrdtDelta& MapEntryDelta(Call& call, const pb::Any& key) {
  v1::ORMapDelta& map = *call.crdt_delta.mutable_or_map();
  for (v1::ORMapEntryDelta& entry : *map.mutable_updated()) {
    if (Same(entry.key(), key)) return *entry.mutable_delta();
  }
  v1::ORMapEntryDelta* entry = map.add_updated();
  *entry->mutable_key() = key;
  return *entry->mutable_delta();
}

}  // namespace

const std::string& TypeNameOf(const pb::Message& message) {
  return message.GetDescriptor()->full_name();
}

bool CrdtIs(Call& call, CrdtType type, const char* handle) {
  if (call.service.kind == Kind::kCrdt && call.service.crdt_type == type) return true;
  if (call.misuse.empty()) {
    call.misuse = std::string("a ") + handle + " handle in " + call.service.name + "/" +
                  call.method.descriptor->name() + ", whose entities are " +
                  (call.service.kind == Kind::kCrdt
                       ? std::string(CrdtTypeName(call.service.crdt_type)) + "s"
                       : "not CRDTs");
  }
  return false;
}

int64_t CrdtCounter(const Call& call) {
  const v1::CrdtValue& value = *call.crdt_value;
  if (call.service.crdt_type == CrdtType::kGCounter) {
    return static_cast<int64_t>(value.g_counter().value() +
                                call.crdt_delta.g_counter().increment());
  }
  return value.pn_counter().value() + call.crdt_delta.pn_counter().change();
}

void CrdtIncrement(Call& call, int64_t by) {
  if (call.service.crdt_type == CrdtType::kGCounter) {
    if (by < 0) {
      if (call.misuse.empty()) call.misuse = "a GCounter only grows; use a PNCounter to decrement";
      return;
    }
    v1::GCounterDelta& delta = *call.crdt_delta.mutable_g_counter();
    delta.set_increment(delta.increment() + static_cast<uint64_t>(by));
  } else {
    v1::PNCounterDelta& delta = *call.crdt_delta.mutable_pn_counter();
    delta.set_change(delta.change() + by);
  }
}

std::vector<std::string> CrdtElements(const Call& call, std::string_view type_name) {
  std::vector<pb::Any> items;
  const v1::CrdtValue& value = *call.crdt_value;
  switch (call.service.crdt_type) {
    case CrdtType::kGSet:
      items.assign(value.g_set().items().begin(), value.g_set().items().end());
      items.insert(items.end(), call.crdt_delta.g_set().added().begin(),
                   call.crdt_delta.g_set().added().end());
      break;
    case CrdtType::kORSet: {
      const v1::ORSetDelta& delta = call.crdt_delta.or_set();
      if (!delta.cleared()) items.assign(value.or_set().items().begin(), value.or_set().items().end());
      std::erase_if(items, [&](const pb::Any& item) {
        return std::any_of(delta.removed().begin(), delta.removed().end(),
                           [&](const pb::Any& r) { return Same(r, item); });
      });
      items.insert(items.end(), delta.added().begin(), delta.added().end());
      break;
    }
    case CrdtType::kORMap: {
      const v1::ORMapDelta& delta = call.crdt_delta.or_map();
      if (!delta.cleared()) {
        for (const v1::ORMapEntry& entry : value.or_map().entries()) items.push_back(entry.key());
      }
      std::erase_if(items, [&](const pb::Any& item) {
        return std::any_of(delta.removed().begin(), delta.removed().end(),
                           [&](const pb::Any& r) { return Same(r, item); });
      });
      for (const v1::ORMapEntryDelta& entry : delta.updated()) items.push_back(entry.key());
      break;
    }
    default:
      break;
  }
  std::vector<std::string> out;
  for (const pb::Any& item : items) {
    if (TypeNameOfUrl(item.type_url()) != type_name) continue;
    if (std::find(out.begin(), out.end(), item.value()) == out.end()) out.push_back(item.value());
  }
  return out;
}

void CrdtSetChange(Call& call, const pb::Message& element, bool add) {
  const pb::Any item = Pack(element);
  if (call.service.crdt_type == CrdtType::kGSet) {
    *call.crdt_delta.mutable_g_set()->add_added() = item;  // GSet handles only add
    return;
  }
  v1::ORSetDelta& delta = *call.crdt_delta.mutable_or_set();
  Erase(*delta.mutable_added(), item);
  Erase(*delta.mutable_removed(), item);
  *(add ? delta.add_added() : delta.add_removed()) = item;
}

void CrdtClear(Call& call) {
  if (call.service.crdt_type == CrdtType::kORMap) {
    v1::ORMapDelta& delta = *call.crdt_delta.mutable_or_map();
    delta.Clear();
    delta.set_cleared(true);
    return;
  }
  v1::ORSetDelta& delta = *call.crdt_delta.mutable_or_set();
  delta.Clear();
  delta.set_cleared(true);
}

std::optional<std::string> CrdtRegister(const Call& call, std::string_view type_name) {
  const pb::Any& value = call.crdt_delta.has_lww_register()
                             ? call.crdt_delta.lww_register().value()
                             : call.crdt_value->lww_register().value();
  if (value.type_url().empty() || TypeNameOfUrl(value.type_url()) != type_name) {
    return std::nullopt;
  }
  return value.value();
}

void CrdtAssign(Call& call, const pb::Message& value, Clock clock, int64_t custom) {
  v1::LWWRegisterDelta& delta = *call.crdt_delta.mutable_lww_register();
  *delta.mutable_value() = Pack(value);
  delta.set_clock(static_cast<v1::CrdtClock>(static_cast<int>(clock)));
  delta.set_custom_clock_value(custom);
}

bool CrdtFlag(const Call& call) {
  return call.crdt_value->flag().value() || call.crdt_delta.flag().enable();
}

void CrdtEnable(Call& call) { call.crdt_delta.mutable_flag()->set_enable(true); }

void CrdtVoteValue(const Call& call, bool* self, uint32_t* votes_for, uint32_t* voters) {
  const v1::VoteValue& value = call.crdt_value->vote();
  *self = value.self_vote();
  *votes_for = value.votes_for();
  *voters = value.total_voters();
  if (call.crdt_delta.has_vote()) *self = call.crdt_delta.vote().self_vote();
}

void CrdtVote(Call& call, bool vote) { call.crdt_delta.mutable_vote()->set_self_vote(vote); }

int64_t CrdtMapCounter(const Call& call, const pb::Message& key) {
  const pb::Any wanted = Pack(key);
  int64_t total = 0;
  const v1::ORMapDelta& delta = call.crdt_delta.or_map();
  bool removed = delta.cleared();
  for (const pb::Any& r : delta.removed()) removed = removed || Same(r, wanted);
  if (!removed) {
    for (const v1::ORMapEntry& entry : call.crdt_value->or_map().entries()) {
      if (Same(entry.key(), wanted)) total += entry.value().pn_counter().value();
    }
  }
  for (const v1::ORMapEntryDelta& entry : delta.updated()) {
    if (Same(entry.key(), wanted)) total += entry.delta().pn_counter().change();
  }
  return total;
}

void CrdtMapIncrement(Call& call, const pb::Message& key, int64_t by) {
  v1::PNCounterDelta& counter = *MapEntryDelta(call, Pack(key)).mutable_pn_counter();
  counter.set_change(counter.change() + by);
}

void CrdtMapRemove(Call& call, const pb::Message& key) {
  const pb::Any item = Pack(key);
  v1::ORMapDelta& delta = *call.crdt_delta.mutable_or_map();
  for (int i = delta.updated_size() - 1; i >= 0; --i) {
    if (Same(delta.updated(i).key(), item)) delta.mutable_updated()->DeleteSubrange(i, 1);
  }
  Erase(*delta.mutable_removed(), item);
  *delta.add_removed() = item;
}

}  // namespace massa::sdk::detail

namespace massa::sdk {

void CrdtContext::Delete() { call_.crdt_delete = true; }

void CrdtContext::SetWriteConsistency(WriteConsistency consistency) {
  call_.crdt_consistency = static_cast<int>(consistency);
}

}  // namespace massa::sdk

// The CRDT test function (test/integration/crdt_test.cc): a service per CRDT type, written
// with the C++ SDK's typed handles. Usage: crdt-function --listen ADDRESS
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "massa/sdk/function.h"
#include "massa/test/crdt.pb.h"

namespace crdt = massa::test::crdt;
using massa::sdk::CrdtContext;
using massa::sdk::CrdtType;
using massa::sdk::Result;

namespace {

crdt::Item ItemOf(const crdt::Op& op) {
  crdt::Item item;
  item.set_name(op.item());
  return item;
}

template <typename Set>
crdt::View SetView(const Set& set) {
  crdt::View view;
  std::vector<std::string> names;
  for (const crdt::Item& item : set.elements()) names.push_back(item.name());
  std::sort(names.begin(), names.end());
  for (std::string& name : names) view.add_items(std::move(name));
  return view;
}

crdt::View ScoresView(massa::sdk::ORMap<crdt::Item>& map) {
  crdt::View view;
  std::vector<std::string> names;
  for (const crdt::Item& key : map.keys()) {
    names.push_back(key.name());
    (*view.mutable_scores())[key.name()] = map.counter(key);
  }
  std::sort(names.begin(), names.end());
  for (std::string& name : names) view.add_items(std::move(name));
  return view;
}

crdt::View VoteView(massa::sdk::Vote vote) {
  crdt::View view;
  view.set_flag(vote.self_vote());
  view.set_votes_for(vote.votes_for());
  view.set_voters(vote.voters());
  return view;
}

// Registers Get and Delete (answered with `view` of the value) on `service`.
template <typename ViewOf>
massa::sdk::CrdtEntity& WithGetAndDelete(massa::sdk::CrdtEntity& service, ViewOf view) {
  return service
      .Handle("Get", [view](CrdtContext& ctx, const crdt::Op&) -> Result<crdt::View> {
        return view(ctx);
      })
      .Handle("Delete", [view](CrdtContext& ctx, const crdt::Op&) -> Result<crdt::View> {
        ctx.Delete();
        return view(ctx);
      });
}

}  // namespace

int main(int argc, char** argv) {
  massa::sdk::Function function("crdt-function");

  const auto counter_view = [](auto handle) {
    crdt::View view;
    view.set_counter(static_cast<int64_t>(handle.value()));
    return view;
  };
  WithGetAndDelete(function.AddCrdtEntity("massa.test.crdt.Hits", CrdtType::kGCounter),
                   [=](CrdtContext& ctx) { return counter_view(ctx.g_counter()); })
      .Handle("Add", [=](CrdtContext& ctx, const crdt::Op& op) -> Result<crdt::View> {
        if (op.wrong() == "handle") ctx.pn_counter().Increment(op.n());
        massa::sdk::GCounter hits = ctx.g_counter();
        hits.Increment(static_cast<uint64_t>(op.n()));
        return counter_view(hits);
      });
  WithGetAndDelete(function.AddCrdtEntity("massa.test.crdt.Balance", CrdtType::kPNCounter),
                   [=](CrdtContext& ctx) { return counter_view(ctx.pn_counter()); })
      .Handle("Add", [=](CrdtContext& ctx, const crdt::Op& op) -> Result<crdt::View> {
        massa::sdk::PNCounter balance = ctx.pn_counter();
        balance.Increment(op.n());
        if (op.consistency() == "majority") {
          ctx.SetWriteConsistency(massa::sdk::WriteConsistency::kMajority);
        } else if (op.consistency() == "all") {
          ctx.SetWriteConsistency(massa::sdk::WriteConsistency::kAll);
        }
        return counter_view(balance);
      })
      .Handle("Remind", [=](CrdtContext& ctx, const crdt::Op& op) -> Result<crdt::View> {
        crdt::Op hit;
        hit.set_id(op.item());
        hit.set_n(op.n());
        ctx.ScheduleTimer("remind", "massa.test.crdt.Hits", "Add", hit,
                          massa::sdk::Schedule::After(std::chrono::milliseconds(100)));
        return counter_view(ctx.pn_counter());
      });
  WithGetAndDelete(function.AddCrdtEntity("massa.test.crdt.Tags", CrdtType::kGSet),
                   [](CrdtContext& ctx) { return SetView(ctx.g_set<crdt::Item>()); })
      .Handle("Add", [](CrdtContext& ctx, const crdt::Op& op) -> Result<crdt::View> {
        auto tags = ctx.g_set<crdt::Item>();
        tags.Add(ItemOf(op));
        return SetView(tags);
      });
  WithGetAndDelete(function.AddCrdtEntity("massa.test.crdt.Members", CrdtType::kORSet),
                   [](CrdtContext& ctx) { return SetView(ctx.or_set<crdt::Item>()); })
      .Handle("Add", [](CrdtContext& ctx, const crdt::Op& op) -> Result<crdt::View> {
        auto members = ctx.or_set<crdt::Item>();
        members.Add(ItemOf(op));
        return SetView(members);
      })
      .Handle("Remove", [](CrdtContext& ctx, const crdt::Op& op) -> Result<crdt::View> {
        auto members = ctx.or_set<crdt::Item>();
        members.Remove(ItemOf(op));
        return SetView(members);
      })
      .Handle("Clear", [](CrdtContext& ctx, const crdt::Op&) -> Result<crdt::View> {
        auto members = ctx.or_set<crdt::Item>();
        members.Clear();
        return SetView(members);
      });
  const auto title_view = [](CrdtContext& ctx) {
    crdt::View view;
    std::optional<crdt::Item> text = ctx.lww_register<crdt::Item>().value();
    if (text.has_value()) view.set_text(text->name());
    return view;
  };
  WithGetAndDelete(function.AddCrdtEntity("massa.test.crdt.Title", CrdtType::kLWWRegister),
                   title_view)
      .Handle("Set", [=](CrdtContext& ctx, const crdt::Op& op) -> Result<crdt::View> {
        ctx.lww_register<crdt::Item>().Set(ItemOf(op));
        return title_view(ctx);
      });
  const auto switch_view = [](CrdtContext& ctx) {
    crdt::View view;
    view.set_flag(ctx.flag().enabled());
    return view;
  };
  WithGetAndDelete(function.AddCrdtEntity("massa.test.crdt.Switch", CrdtType::kFlag), switch_view)
      .Handle("Enable", [=](CrdtContext& ctx, const crdt::Op&) -> Result<crdt::View> {
        ctx.flag().Enable();
        return switch_view(ctx);
      });
  WithGetAndDelete(function.AddCrdtEntity("massa.test.crdt.Scores", CrdtType::kORMap),
                   [](CrdtContext& ctx) {
                     auto scores = ctx.or_map<crdt::Item>();
                     return ScoresView(scores);
                   })
      .Handle("Add", [](CrdtContext& ctx, const crdt::Op& op) -> Result<crdt::View> {
        auto scores = ctx.or_map<crdt::Item>();
        scores.Increment(ItemOf(op), op.n());
        return ScoresView(scores);
      })
      .Handle("Remove", [](CrdtContext& ctx, const crdt::Op& op) -> Result<crdt::View> {
        auto scores = ctx.or_map<crdt::Item>();
        scores.Remove(ItemOf(op));
        return ScoresView(scores);
      });
  WithGetAndDelete(function.AddCrdtEntity("massa.test.crdt.Poll", CrdtType::kVote),
                   [](CrdtContext& ctx) { return VoteView(ctx.vote()); })
      .Handle("Cast", [](CrdtContext& ctx, const crdt::Op& op) -> Result<crdt::View> {
        massa::sdk::Vote vote = ctx.vote();
        vote.Cast(op.flag());
        return VoteView(vote);
      });
  return function.Run(argc, argv);
}

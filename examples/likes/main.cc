// The likes example function (see proto/example/likes/likes.proto).
// Usage: likes-function [--listen ADDRESS]
#include <algorithm>
#include <string>
#include <vector>

#include "example/likes/likes.pb.h"
#include "massa/sdk/function.h"

namespace likes = example::likes;
using massa::sdk::CrdtContext;
using massa::sdk::CrdtType;
using massa::sdk::Fail;
using massa::sdk::Result;

namespace {

likes::LikeCount CountOf(const std::string& article_id, int64_t likes) {
  likes::LikeCount count;
  count.set_article_id(article_id);
  count.set_likes(likes);
  return count;
}

likes::Online OnlineOf(const std::string& room_id, massa::sdk::ORSet<likes::User>& users) {
  likes::Online online;
  online.set_room_id(room_id);
  std::vector<std::string> names;
  for (const likes::User& user : users.elements()) names.push_back(user.name());
  std::sort(names.begin(), names.end());
  for (std::string& name : names) online.add_users(std::move(name));
  return online;
}

likes::User UserOf(const likes::Presence& request) {
  likes::User user;
  user.set_name(request.user());
  return user;
}

}  // namespace

int main(int argc, char** argv) {
  massa::sdk::Function function("likes", "0.1.0");
  function.AddCrdtEntity("example.likes.Likes", CrdtType::kPNCounter)
      .Handle("Like", [](CrdtContext& ctx, const likes::ArticleRef& ref) -> Result<likes::LikeCount> {
        massa::sdk::PNCounter counter = ctx.pn_counter();
        counter.Increment();
        return CountOf(ref.article_id(), counter.value());
      })
      .Handle("Unlike", [](CrdtContext& ctx, const likes::ArticleRef& ref)
                            -> Result<likes::LikeCount> {
        massa::sdk::PNCounter counter = ctx.pn_counter();
        if (counter.value() <= 0) return Fail("article " + ref.article_id() + " has no likes");
        counter.Decrement();
        return CountOf(ref.article_id(), counter.value());
      })
      .Handle("GetLikes", [](CrdtContext& ctx, const likes::ArticleRef& ref)
                              -> Result<likes::LikeCount> {
        return CountOf(ref.article_id(), ctx.pn_counter().value());
      });
  function.AddCrdtEntity("example.likes.Rooms", CrdtType::kORSet)
      .Handle("Join", [](CrdtContext& ctx, const likes::Presence& request) -> Result<likes::Online> {
        if (request.user().empty()) return Fail(massa::sdk::Code::kInvalidArgument, "no user");
        auto users = ctx.or_set<likes::User>();
        users.Add(UserOf(request));
        return OnlineOf(request.room_id(), users);
      })
      .Handle("Leave", [](CrdtContext& ctx, const likes::Presence& request) -> Result<likes::Online> {
        auto users = ctx.or_set<likes::User>();
        users.Remove(UserOf(request));
        return OnlineOf(request.room_id(), users);
      })
      .Handle("GetOnline", [](CrdtContext& ctx, const likes::RoomRef& ref) -> Result<likes::Online> {
        auto users = ctx.or_set<likes::User>();
        return OnlineOf(ref.room_id(), users);
      });
  return function.Run(argc, argv);
}

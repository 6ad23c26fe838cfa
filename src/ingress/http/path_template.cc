#include "ingress/http/path_template.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace massa::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsUnreserved(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

// Characters a template literal may hold besides unreserved ones and %XX: RFC 3986 pchar
// without ':' (it starts the verb) and '*' (a segment of its own).
bool IsLiteralPunct(char c) {
  switch (c) {
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '+':
    case ',':
    case ';':
    case '=':
    case '@':
      return true;
    default:
      return false;
  }
}

// True when every '%' in `text` starts a %XX escape.
bool EscapesWellFormed(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') continue;
    if (i + 2 >= text.size() || HexValue(text[i + 1]) < 0 || HexValue(text[i + 2]) < 0) {
      return false;
    }
    i += 2;
  }
  return true;
}

// RFC 3986 section 6.2.2 normalization: escapes of unreserved characters decoded, the hex
// digits of the others upper-cased. `text` has well-formed escapes.
std::string Normalize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      char decoded = static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
      if (IsUnreserved(decoded)) {
        out += decoded;
      } else {
        out += '%';
        out += absl::ascii_toupper(static_cast<unsigned char>(text[i + 1]));
        out += absl::ascii_toupper(static_cast<unsigned char>(text[i + 2]));
      }
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

bool IsIdentStart(char c) { return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  absl::Status Parse(std::vector<PathTemplate::Segment>& segments,
                     std::vector<PathTemplate::Variable>& variables, std::string& verb) {
    segments_ = &segments;
    variables_ = &variables;
    if (text_.empty() || text_[0] != '/') return Error("it must start with '/'", 0);
    pos_ = 1;
    if (absl::Status s = ParseSegments(/*in_variable=*/false); !s.ok()) return s;
    if (pos_ < text_.size() && text_[pos_] == ':') {
      ++pos_;
      const size_t start = pos_;
      if (absl::Status s = ParseLiteral(/*verb=*/true); !s.ok()) return s;
      verb = Normalize(text_.substr(start, pos_ - start));
    }
    if (pos_ < text_.size()) {
      if (text_[pos_] == '/' || text_[pos_] == '{' || text_[pos_] == ':') {
        return Error(absl::StrCat("'", std::string(1, text_[pos_]),
                                  "' after the verb (the verb must come last)"),
                     pos_);
      }
      return Error(absl::StrCat("unexpected '", std::string(1, text_[pos_]), "'"), pos_);
    }
    for (size_t i = 0; i + 1 < segments.size(); ++i) {
      if (segments[i].kind == PathTemplate::SegmentKind::kMulti) {
        return Error("'**' must be the last segment (only a verb may follow it)",
                     std::string::npos);
      }
    }
    absl::flat_hash_set<std::string> bound;
    for (const PathTemplate::Variable& variable : variables) {
      std::string name = absl::StrJoin(variable.field_path, ".");
      if (!bound.insert(name).second) {
        return Error(absl::StrCat("field '", name, "' is bound twice"), std::string::npos);
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error(std::string_view what, size_t offset) const {
    std::string where = offset == std::string::npos ? "" : absl::StrCat(" at offset ", offset);
    return absl::InvalidArgumentError(
        absl::StrCat("invalid path template \"", absl::string_view(text_.data(), text_.size()),
                     "\": ", absl::string_view(what.data(), what.size()), where));
  }

  bool AtEnd() const { return pos_ >= text_.size(); }

  absl::Status ParseSegments(bool in_variable) {
    while (true) {
      if (absl::Status s = ParseSegment(in_variable); !s.ok()) return s;
      if (AtEnd() || text_[pos_] != '/') return absl::OkStatus();
      ++pos_;
    }
  }

  absl::Status ParseSegment(bool in_variable) {
    if (AtEnd() || text_[pos_] == '/' || text_[pos_] == ':' || text_[pos_] == '}') {
      return Error("empty segment", pos_);
    }
    const char c = text_[pos_];
    if (c == '{') {
      if (in_variable) return Error("a variable inside a variable", pos_);
      return ParseVariable();
    }
    if (c == '*') {
      PathTemplate::Segment segment;
      if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '*') {
        segment.kind = PathTemplate::SegmentKind::kMulti;
        pos_ += 2;
      } else {
        segment.kind = PathTemplate::SegmentKind::kSingle;
        pos_ += 1;
      }
      if (!AtEnd() && text_[pos_] != '/' && text_[pos_] != '}' &&
          !(text_[pos_] == ':' && !in_variable)) {
        return Error("'*' and '**' must be whole segments", pos_);
      }
      segments_->push_back(std::move(segment));
      return absl::OkStatus();
    }
    const size_t start = pos_;
    if (absl::Status s = ParseLiteral(/*verb=*/false); !s.ok()) return s;
    if (in_variable && !AtEnd() && text_[pos_] == ':') {
      return Error("':' inside a variable", pos_);
    }
    segments_->push_back(PathTemplate::Segment{PathTemplate::SegmentKind::kLiteral,
                                               Normalize(text_.substr(start, pos_ - start))});
    return absl::OkStatus();
  }

  // Reads a LITERAL (a segment or the verb) up to '/', ':', '{', '}' or the end.
  absl::Status ParseLiteral(bool verb) {
    const size_t start = pos_;
    while (!AtEnd()) {
      const char c = text_[pos_];
      if (c == '/' || c == ':' || c == '{' || c == '}') break;
      if (c == '%') {
        if (pos_ + 2 >= text_.size() || HexValue(text_[pos_ + 1]) < 0 ||
            HexValue(text_[pos_ + 2]) < 0) {
          return Error("malformed percent escape", pos_);
        }
        pos_ += 3;
        continue;
      }
      if (c == '*') return Error("'*' and '**' must be whole segments", pos_);
      if (!IsUnreserved(c) && !IsLiteralPunct(c)) {
        std::string shown =
            absl::ascii_isprint(static_cast<unsigned char>(c))
                ? std::string(1, c)
                : absl::StrCat("\\x", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        return Error(absl::StrCat("character '", shown, "' is not allowed (percent-encode it)"),
                     pos_);
      }
      ++pos_;
    }
    if (pos_ == start) return Error(verb ? "empty verb" : "empty segment", pos_);
    return absl::OkStatus();
  }

  absl::Status ParseVariable() {
    const size_t open = pos_;
    ++pos_;  // '{'
    PathTemplate::Variable variable;
    while (true) {
      const size_t start = pos_;
      if (AtEnd() || !IsIdentStart(text_[pos_])) {
        return Error("expected a field name", pos_);
      }
      while (!AtEnd() && IsIdentChar(text_[pos_])) ++pos_;
      variable.field_path.emplace_back(text_.substr(start, pos_ - start));
      if (!AtEnd() && text_[pos_] == '.') {
        ++pos_;
        continue;
      }
      break;
    }
    variable.begin = segments_->size();
    if (!AtEnd() && text_[pos_] == '=') {
      ++pos_;
      if (absl::Status s = ParseSegments(/*in_variable=*/true); !s.ok()) return s;
    } else {
      segments_->push_back(PathTemplate::Segment{PathTemplate::SegmentKind::kSingle, ""});
    }
    if (AtEnd()) return Error("unterminated variable", open);
    if (text_[pos_] != '}') {
      if (text_[pos_] == '{') return Error("a variable inside a variable", pos_);
      return Error(absl::StrCat("unexpected '", std::string(1, text_[pos_]),
                                "' in a variable (expected '}')"),
                   pos_);
    }
    ++pos_;
    variable.end = segments_->size();
    variable.multi_segment = variable.end - variable.begin > 1;
    for (size_t i = variable.begin; i < variable.end; ++i) {
      if ((*segments_)[i].kind == PathTemplate::SegmentKind::kMulti) variable.multi_segment = true;
    }
    variables_->push_back(std::move(variable));
    return absl::OkStatus();
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::vector<PathTemplate::Segment>* segments_ = nullptr;
  std::vector<PathTemplate::Variable>* variables_ = nullptr;
};

int Rank(PathTemplate::SegmentKind kind) {
  switch (kind) {
    case PathTemplate::SegmentKind::kLiteral:
      return 0;
    case PathTemplate::SegmentKind::kSingle:
      return 1;
    case PathTemplate::SegmentKind::kMulti:
      return 2;
  }
  return 3;
}

std::string SegmentText(const PathTemplate::Segment& segment) {
  switch (segment.kind) {
    case PathTemplate::SegmentKind::kLiteral:
      return segment.literal;
    case PathTemplate::SegmentKind::kSingle:
      return "*";
    case PathTemplate::SegmentKind::kMulti:
      return "**";
  }
  return "";
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view text, bool keep_slash) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = HexValue(text[i + 1]);
    const int lo = HexValue(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    const char decoded = static_cast<char>(hi * 16 + lo);
    if (keep_slash && decoded == '/') {
      out.append(text.substr(i, 3));
    } else {
      out += decoded;
    }
    i += 2;
  }
  return out;
}

absl::StatusOr<RequestPath> RequestPath::Parse(std::string_view path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError("the request path must start with '/'");
  }
  if (!EscapesWellFormed(path)) {
    return absl::InvalidArgumentError("malformed percent-encoding in the request path");
  }
  RequestPath result;
  for (absl::string_view segment :
       absl::StrSplit(absl::string_view(path.data() + 1, path.size() - 1), '/')) {
    result.raw_.emplace_back(segment);
    result.normalized_.push_back(Normalize(std::string_view(segment.data(), segment.size())));
  }
  const std::string& last = result.raw_.back();
  if (size_t colon = last.rfind(':'); colon != std::string::npos) {
    result.has_verb_ = true;
    result.last_without_verb_raw_ = last.substr(0, colon);
    result.last_without_verb_normalized_ = Normalize(result.last_without_verb_raw_);
    result.verb_normalized_ = Normalize(std::string_view(last).substr(colon + 1));
  }
  return result;
}

absl::StatusOr<PathTemplate> PathTemplate::Parse(std::string_view text) {
  PathTemplate result;
  result.text_ = std::string(text);
  Parser parser(text);
  if (absl::Status s = parser.Parse(result.segments_, result.variables_, result.verb_); !s.ok()) {
    return s;
  }
  return result;
}

std::optional<std::vector<std::string>> PathTemplate::Match(const RequestPath& path) const {
  const size_t n = path.raw_.size();
  const bool with_verb = !verb_.empty();
  if (with_verb && (!path.has_verb_ || path.verb_normalized_ != verb_)) return std::nullopt;
  auto raw_at = [&](size_t i) -> const std::string& {
    return with_verb && i + 1 == n ? path.last_without_verb_raw_ : path.raw_[i];
  };
  auto normalized_at = [&](size_t i) -> const std::string& {
    return with_verb && i + 1 == n ? path.last_without_verb_normalized_ : path.normalized_[i];
  };

  // starts[i]: the request segment where template segment i begins.
  std::vector<size_t> starts(segments_.size() + 1);
  size_t j = 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    starts[i] = j;
    const Segment& segment = segments_[i];
    switch (segment.kind) {
      case SegmentKind::kLiteral:
        if (j >= n || normalized_at(j) != segment.literal) return std::nullopt;
        ++j;
        break;
      case SegmentKind::kSingle:
        if (j >= n || raw_at(j).empty()) return std::nullopt;
        ++j;
        break;
      case SegmentKind::kMulti:
        j = n;
        break;
    }
  }
  starts[segments_.size()] = j;
  if (j != n) return std::nullopt;

  std::vector<std::string> values;
  values.reserve(variables_.size());
  for (const Variable& variable : variables_) {
    std::string raw;
    for (size_t k = starts[variable.begin]; k < starts[variable.end]; ++k) {
      if (k != starts[variable.begin]) raw += '/';
      raw += raw_at(k);
    }
    // RequestPath::Parse checked the escapes, so decoding cannot fail.
    values.push_back(*PercentDecode(raw, /*keep_slash=*/variable.multi_segment));
  }
  return values;
}

std::optional<std::vector<std::string>> PathTemplate::Match(std::string_view path) const {
  absl::StatusOr<RequestPath> parsed = RequestPath::Parse(path);
  if (!parsed.ok()) return std::nullopt;
  return Match(*parsed);
}

std::string PathTemplate::Shape() const {
  std::string out;
  for (const Segment& segment : segments_) absl::StrAppend(&out, "/", SegmentText(segment));
  if (!verb_.empty()) absl::StrAppend(&out, ":", verb_);
  return out;
}

std::string PathTemplate::ToString() const {
  std::string out;
  size_t v = 0;
  for (size_t i = 0; i < segments_.size();) {
    out += '/';
    if (v < variables_.size() && variables_[v].begin == i) {
      const Variable& variable = variables_[v++];
      absl::StrAppend(&out, "{", absl::StrJoin(variable.field_path, "."), "=");
      for (size_t k = variable.begin; k < variable.end; ++k) {
        if (k != variable.begin) out += '/';
        out += SegmentText(segments_[k]);
      }
      out += '}';
      i = variable.end;
    } else {
      out += SegmentText(segments_[i]);
      ++i;
    }
  }
  if (!verb_.empty()) absl::StrAppend(&out, ":", verb_);
  return out;
}

bool PathTemplate::MoreSpecific(const PathTemplate& a, const PathTemplate& b) {
  if (a.verb_.empty() != b.verb_.empty()) return !a.verb_.empty();
  const size_t common = std::min(a.segments_.size(), b.segments_.size());
  for (size_t i = 0; i < common; ++i) {
    const Segment& x = a.segments_[i];
    const Segment& y = b.segments_[i];
    if (x.kind != y.kind) return Rank(x.kind) < Rank(y.kind);
    if (x.kind == SegmentKind::kLiteral && x.literal != y.literal) return x.literal < y.literal;
  }
  if (a.segments_.size() != b.segments_.size()) return a.segments_.size() < b.segments_.size();
  return a.verb_ < b.verb_;
}

}  // namespace massa::http

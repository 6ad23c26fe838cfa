#include "ingress/http/transcoder_util.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "ingress/http/path_template.h"

namespace massa::http {
namespace {

namespace pb = google::protobuf;

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status BadValue(const pb::FieldDescriptor& field, std::string_view value,
                      std::string_view expected) {
  constexpr size_t kMaxShown = 64;
  // Cut at a character boundary.
  size_t n = std::min(value.size(), kMaxShown);
  while (n > 0 && n < value.size() && (static_cast<unsigned char>(value[n]) & 0xC0) == 0x80) --n;
  std::string_view prefix = value.substr(0, n);
  std::string shown = IsValidUtf8(prefix) ? std::string(prefix) : std::string("<not UTF-8>");
  return absl::InvalidArgumentError(absl::StrCat("field '", field.name(), "': ", JsonQuote(shown),
                                                 n < value.size() ? "..." : "", " is not ",
                                                 AbslView(expected)));
}

bool IsBlankView(std::string_view text) {
  return absl::StripAsciiWhitespace(AbslView(text)).empty();
}

// Digits only, no spaces: absl's parsers also accept surrounding whitespace.
bool HasSpaceAtEnds(std::string_view value) {
  return !value.empty() && (absl::ascii_isspace(static_cast<unsigned char>(value.front())) ||
                            absl::ascii_isspace(static_cast<unsigned char>(value.back())));
}

template <typename Int>
bool ParseInt(std::string_view value, Int* out) {
  if (value.empty() || HasSpaceAtEnds(value)) return false;
  return absl::SimpleAtoi(AbslView(value), out);
}

bool ParseDouble(std::string_view value, double* out) {
  if (value == "NaN") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (value == "Infinity") {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (value == "-Infinity") {
    *out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (value.empty() || HasSpaceAtEnds(value)) return false;
  if (!absl::SimpleAtod(AbslView(value), out)) return false;
  // Out of range parses as +-inf; only the spelled-out names may give an infinity.
  return !std::isinf(*out) || absl::StrContains(absl::AsciiStrToLower(AbslView(value)), "inf");
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra;
    uint32_t code;
    uint32_t min;
    if ((c & 0xE0) == 0xC0) {
      extra = 1, code = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, code = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, code = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(extra) >= n) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

absl::StatusOr<std::vector<QueryParam>> ParseQueryString(std::string_view query) {
  std::vector<QueryParam> params;
  for (absl::string_view piece : absl::StrSplit(AbslView(query), '&', absl::SkipEmpty())) {
    std::string text(piece);
    for (char& c : text) {
      if (c == '+') c = ' ';
    }
    const size_t eq = text.find('=');
    std::string_view raw_name = std::string_view(text).substr(0, eq);
    std::string_view raw_value =
        eq == std::string::npos ? std::string_view() : std::string_view(text).substr(eq + 1);
    std::optional<std::string> name = PercentDecode(raw_name);
    std::optional<std::string> value = PercentDecode(raw_value);
    if (!name || !value) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed percent-encoding in query parameter '",
                       IsValidUtf8(raw_name) ? AbslView(raw_name) : "?", "'"));
    }
    if (!IsValidUtf8(*name) || !IsValidUtf8(*value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query parameter '", IsValidUtf8(*name) ? *name : "?", "' is not UTF-8 once decoded"));
    }
    params.push_back(QueryParam{*std::move(name), *std::move(value)});
  }
  return params;
}

absl::Status SetFieldFromString(pb::Message& message, const pb::FieldDescriptor& field,
                                std::string_view value) {
  const pb::Reflection& r = *message.GetReflection();
  const bool repeated = field.is_repeated();
  switch (field.cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!ParseInt(value, &v)) return BadValue(field, value, "a 32-bit integer");
      repeated ? r.AddInt32(&message, &field, v) : r.SetInt32(&message, &field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!ParseInt(value, &v)) return BadValue(field, value, "a 64-bit integer");
      repeated ? r.AddInt64(&message, &field, v) : r.SetInt64(&message, &field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v;
      if (!ParseInt(value, &v)) return BadValue(field, value, "an unsigned 32-bit integer");
      repeated ? r.AddUInt32(&message, &field, v) : r.SetUInt32(&message, &field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v;
      if (!ParseInt(value, &v)) return BadValue(field, value, "an unsigned 64-bit integer");
      repeated ? r.AddUInt64(&message, &field, v) : r.SetUInt64(&message, &field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
      double v;
      if (!ParseDouble(value, &v)) return BadValue(field, value, "a number");
      repeated ? r.AddDouble(&message, &field, v) : r.SetDouble(&message, &field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_FLOAT: {
      double v;
      if (!ParseDouble(value, &v)) return BadValue(field, value, "a number");
      if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max()) {
        return BadValue(field, value, "a number in the range of a float");
      }
      const auto f = static_cast<float>(v);
      repeated ? r.AddFloat(&message, &field, f) : r.SetFloat(&message, &field, f);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL: {
      bool v;
      if (value == "true" || value == "1") {
        v = true;
      } else if (value == "false" || value == "0") {
        v = false;
      } else {
        return BadValue(field, value, "a bool (true or false)");
      }
      repeated ? r.AddBool(&message, &field, v) : r.SetBool(&message, &field, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumDescriptor& type = *field.enum_type();
      int number;
      if (const pb::EnumValueDescriptor* named = type.FindValueByName(std::string(value))) {
        number = named->number();
      } else if (ParseInt(value, &number)) {
        // Closed (proto2) enums only take declared numbers; open ones take any.
        if (type.file()->syntax() != pb::FileDescriptor::SYNTAX_PROTO3 &&
            type.FindValueByNumber(number) == nullptr) {
          return BadValue(field, value, absl::StrCat("a value of ", type.full_name()));
        }
      } else {
        return BadValue(field, value, absl::StrCat("a value of ", type.full_name()));
      }
      repeated ? r.AddEnumValue(&message, &field, number)
               : r.SetEnumValue(&message, &field, number);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      std::string v;
      if (field.type() == pb::FieldDescriptor::TYPE_BYTES) {
        if (!absl::Base64Unescape(AbslView(value), &v) &&
            !absl::WebSafeBase64Unescape(AbslView(value), &v)) {
          return BadValue(field, value, "base64");
        }
      } else {
        if (!IsValidUtf8(value)) {
          return absl::InvalidArgumentError(
              absl::StrCat("field '", field.name(), "': the value is not UTF-8"));
        }
        v = std::string(value);
      }
      repeated ? r.AddString(&message, &field, std::move(v))
               : r.SetString(&message, &field, std::move(v));
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("field '", field.name(), "' is a message and cannot be set from a string"));
}

std::string JsonQuote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(&out, "\\u00", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

bool IsEmbeddableJsonValue(std::string_view json) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        ++depth;
        break;
      case ']':
      case '}':
        if (--depth < 0) return false;
        break;
      case ',':
      case ':':
        if (depth == 0) return false;
        break;
      default:
        break;
    }
  }
  // An unterminated string or bracket would swallow the closing brace of the wrapper.
  return !in_string && depth == 0;
}

std::optional<std::string_view> FindJsonMember(std::string_view json, std::string_view key) {
  // Walks the members of the top-level object: "key":value, separated by ',' at depth 1.
  int depth = 0;
  bool in_string = false;
  size_t string_start = 0;
  bool expect_key = false;
  std::string_view last_key;
  size_t value_start = std::string_view::npos;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
        if (depth == 1 && expect_key) {
          last_key = json.substr(string_start + 1, i - string_start - 1);
          expect_key = false;
        }
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        string_start = i;
        break;
      case '{':
      case '[':
        if (++depth == 1) expect_key = c == '{';
        break;
      case '}':
      case ']':
        if (depth == 1 && value_start != std::string_view::npos) {
          return json.substr(value_start, i - value_start);
        }
        --depth;
        break;
      case ':':
        if (depth == 1 && last_key == key) value_start = i + 1;
        break;
      case ',':
        if (depth == 1) {
          if (value_start != std::string_view::npos) {
            return json.substr(value_start, i - value_start);
          }
          expect_key = true;
          last_key = std::string_view();
        }
        break;
      default:
        break;
    }
  }
  return std::nullopt;
}

bool IsJsonContentType(std::string_view content_type) {
  if (IsBlankView(content_type)) return true;
  // (absl::StrSplit yields no piece at all for a string_view with a null data pointer.)
  std::vector<absl::string_view> parts = absl::StrSplit(AbslView(content_type), ';');
  if (parts.empty()) return true;
  absl::string_view media = absl::StripAsciiWhitespace(parts[0]);
  if (!absl::EqualsIgnoreCase(media, "application/json")) return false;
  for (size_t i = 1; i < parts.size(); ++i) {
    absl::string_view param = absl::StripAsciiWhitespace(parts[i]);
    std::vector<absl::string_view> kv = absl::StrSplit(param, absl::MaxSplits('=', 1));
    if (kv.size() == 2 && absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(kv[0]), "charset")) {
      absl::string_view charset = absl::StripAsciiWhitespace(kv[1]);
      if (absl::ConsumePrefix(&charset, "\"")) absl::ConsumeSuffix(&charset, "\"");
      if (!absl::EqualsIgnoreCase(charset, "utf-8")) return false;
    }
  }
  return true;
}

}  // namespace massa::http

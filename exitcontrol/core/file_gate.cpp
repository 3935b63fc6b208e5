#include "exitcontrol/core/file_gate.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "common/bytes.hpp"
#include "common/files.hpp"
#include "exitcontrol/core/csv.hpp"
#include "exitcontrol/core/load.hpp"
#include "exitcontrol/core/meta.hpp"

namespace enclave::exitcontrol {

const char* file_class_name(FileClass c) {
  switch (c) {
    case FileClass::kTable:
      return "table";
    case FileClass::kText:
      return "text";
    case FileClass::kReview:
      return "review";
    case FileClass::kRefused:
      return "refused";
  }
  return "unknown";
}

namespace {

using namespace std::string_view_literals;

enum class Family { kRefusedBinary, kReviewable, kText, kUnknownBinary };

struct Detected {
  Family family;
  std::string kind;
  std::size_t magic_offset = 0;  // where the signature sits
  std::size_t magic_length = 0;
  std::vector<std::string_view> extensions;  // what a reviewable type may be named
};

struct Signature {
  std::string_view magic;
  std::size_t offset;
  std::string_view kind;
  // Short printable signatures also begin ordinary text ("MZ", "BZh"): they count only when
  // the content is not text.
  bool binary_only = false;
};

// Containers and programs: refused whatever they are called. Order matters only where one
// signature is a prefix of another (none here).
constexpr Signature kRefused[] = {
    {"\x1F\x8B"sv, 0, "gzip archive"},
    {"BZh"sv, 0, "bzip2 archive", true},
    {"\xFD"
     "7zXZ\x00"sv,
     0, "xz archive"},
    {"7z\xBC\xAF\x27\x1C"sv, 0, "7z archive"},
    {"\x28\xB5\x2F\xFD"sv, 0, "zstd archive"},
    {"\x04\x22\x4D\x18"sv, 0, "lz4 archive"},
    {"Rar!\x1A\x07"sv, 0, "RAR archive"},
    {"ustar"sv, 257, "tar archive", true},
    {"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 0,
     "OLE2 compound document (legacy Excel .xls or Word .doc, may hold macros)"},
    {"\x7F"
     "ELF"sv,
     0, "ELF executable"},
    {"MZ"sv, 0, "PE executable (Windows)", true},
    {"\xFE\xED\xFA\xCE"sv, 0, "Mach-O executable"},
    {"\xFE\xED\xFA\xCF"sv, 0, "Mach-O executable"},
    {"\xCE\xFA\xED\xFE"sv, 0, "Mach-O executable"},
    {"\xCF\xFA\xED\xFE"sv, 0, "Mach-O executable"},
    {"\xCA\xFE\xBA\xBE"sv, 0, "Mach-O universal binary or Java class file"},
    {"\x00"
     "asm"sv,
     0, "WebAssembly module"},
    {"#!"sv, 0, "script with a #! interpreter line"},
};

bool has_at(std::string_view content, std::size_t offset, std::string_view magic) {
  return content.size() >= offset + magic.size() && content.substr(offset, magic.size()) == magic;
}

// A ZIP container's kind from the names of its first entries (they are stored in the clear).
std::string zip_kind(std::string_view content) {
  std::string_view head = content.substr(0, 64 * 1024);
  if (head.find("mimetypeapplication/vnd.oasis.opendocument.spreadsheet") != head.npos) {
    return "OpenDocument spreadsheet (.ods, a ZIP container)";
  }
  if (head.find("mimetypeapplication/vnd.oasis.opendocument") != head.npos) {
    return "OpenDocument file (a ZIP container)";
  }
  if (head.find("xl/") != head.npos) return "Excel workbook (.xlsx, a ZIP container)";
  if (head.find("word/") != head.npos) return "Word document (.docx, a ZIP container)";
  if (head.find("ppt/") != head.npos) return "PowerPoint file (.pptx, a ZIP container)";
  return "ZIP archive";
}

bool is_text(std::string_view content) {
  for (unsigned char c : content) {
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return is_valid_utf8(content);
}

bool looks_like_svg(std::string_view content) {
  std::string_view s = content;
  if (s.starts_with("\xEF\xBB\xBF")) s.remove_prefix(3);
  auto first = s.find_first_not_of(" \t\r\n");
  if (first == s.npos || s[first] != '<') return false;
  return s.substr(0, 4096).find("<svg") != s.npos;
}

Detected detect(std::string_view content) {
  const bool text = is_text(content);
  for (const auto& sig : kRefused) {
    if (has_at(content, sig.offset, sig.magic) && !(sig.binary_only && text)) {
      return {Family::kRefusedBinary, std::string(sig.kind), sig.offset, sig.magic.size(), {}};
    }
  }
  for (std::string_view zip : {std::string_view("PK\x03\x04", 4), std::string_view("PK\x05\x06", 4),
                               std::string_view("PK\x07\x08", 4)}) {
    if (has_at(content, 0, zip)) return {Family::kRefusedBinary, zip_kind(content), 0, 4, {}};
  }
  if (has_at(content, 0, "\x89PNG\r\n\x1A\n")) {
    return {Family::kReviewable, "PNG image", 0, 8, {"png"}};
  }
  if (has_at(content, 0, "\xFF\xD8\xFF")) {
    return {Family::kReviewable, "JPEG image", 0, 3, {"jpg", "jpeg"}};
  }
  if (has_at(content, 0, "%PDF-")) return {Family::kReviewable, "PDF document", 0, 5, {"pdf"}};
  if (text) {
    if (looks_like_svg(content)) return {Family::kReviewable, "SVG image", 0, 0, {"svg"}};
    return {Family::kText, "UTF-8 text", 0, 0, {}};
  }
  return {Family::kUnknownBinary, "binary data of unknown type", 0, 8, {}};
}

std::string show_bytes(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string extension_of(std::string_view name) {
  auto slash = name.find_last_of("/\\");
  if (slash != name.npos) name.remove_prefix(slash + 1);
  auto dot = name.rfind('.');
  if (dot == name.npos || dot == 0) return "";
  return lower(name.substr(dot + 1));
}

bool listed(const std::vector<std::string>& list, std::string_view ext) {
  return std::find(list.begin(), list.end(), ext) != list.end();
}

// Text in a legacy encoding (Shift_JIS, EUC-JP, Latin-1): no NUL bytes, but not UTF-8. Names
// the first bad byte by line and column, as the CSV parser would.
std::optional<std::string> legacy_text_error(std::string_view content) {
  if (content.find('\0') != std::string_view::npos) return std::nullopt;
  std::size_t line = 1, column = 1;
  for (std::size_t at = 0; at < content.size();) {
    const std::size_t start = at;
    auto cp = utf8_next(content, at);
    if (!cp) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(content[start]));
      return "line " + std::to_string(line) + ", column " + std::to_string(column) + ": byte " +
             hex;
    }
    if (*cp == U'\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return std::nullopt;
}

// A field a spreadsheet would evaluate when the CSV is opened (CSV injection): starting with
// = or @, or with + or - where the field is not simply a number or the suppression marker.
bool is_formula(std::string_view field) {
  if (field.empty()) return false;
  char c = field.front();
  if (c == '=' || c == '@') return true;
  if ((c == '+' || c == '-') && field.size() > 1) return !parse_value(field.substr(c == '+'));
  return false;
}

}  // namespace

GateDecision classify_file(std::string_view name, std::string_view content, bool declared_table,
                           const GateLimits& limits) {
  const std::string file(name);
  const std::string ext = extension_of(name);
  const std::string named = ext.empty() ? "with no extension" : "named ." + ext;
  auto refuse = [&](std::string kind, const std::string& why) {
    return GateDecision{FileClass::kRefused, std::move(kind), file + ": refused: " + why};
  };
  if (content.size() > limits.max_file_bytes) {
    return refuse("file over the size limit", std::to_string(content.size()) +
                                                  " bytes, more than the limit of " +
                                                  std::to_string(limits.max_file_bytes));
  }

  Detected d = detect(content);
  const std::string magic =
      d.magic_length == 0
          ? std::string()
          : " (content " + std::string(d.magic_offset == 0 ? "starts " : "has ") +
                show_bytes(content.substr(d.magic_offset, d.magic_length)) +
                (d.magic_offset == 0 ? "" : " at byte " + std::to_string(d.magic_offset)) + ")";

  switch (d.family) {
    case Family::kRefusedBinary:
      return refuse(d.kind, d.kind + magic + " " + named);
    case Family::kUnknownBinary:
      if (auto where = legacy_text_error(content)) {
        return refuse("text not in UTF-8", "text " + named + " is not UTF-8: " + *where +
                                               " (Shift_JIS or another legacy encoding? save "
                                               "it as UTF-8)");
      }
      return refuse(d.kind, d.kind + magic + " " + named);
    case Family::kReviewable: {
      bool matches = std::find(d.extensions.begin(), d.extensions.end(), ext) != d.extensions.end();
      if (!matches) {
        return refuse(d.kind, d.kind + magic + " " + named + ": content and extension disagree");
      }
      if (!listed(limits.review_extensions, ext)) {
        return refuse(d.kind, d.kind + " " + named + ": the profile does not allow this type");
      }
      return {FileClass::kReview, d.kind,
              file + ": review: " + d.kind + "; a steward must inspect it"};
    }
    case Family::kText:
      break;
  }

  if (name.ends_with(".meta.toml")) {
    return {FileClass::kText, "table metadata sidecar", file + ": text: table metadata sidecar"};
  }
  if (listed(limits.table_extensions, ext)) {
    if (!declared_table) {
      return refuse("undeclared table", "a table " + named + " needs its metadata (a sidecar " +
                                            file +
                                            ".meta.toml or CLI flags) before it can be checked");
    }
    // A file the CSV parser refuses still goes on as a table: the loader names the bad row.
    if (auto doc = csv::parse(content)) {
      for (std::size_t r = 0; r < doc->records(); ++r) {
        for (std::size_t c = 0; c < doc->width(); ++c) {
          std::string_view field = doc->field(r, c);
          if (!is_formula(field)) continue;
          return refuse("CSV with spreadsheet formulas",
                        "row " + std::to_string(r + 1) + " column " + std::to_string(c + 1) +
                            " starts a spreadsheet formula (\"" + std::string(field.substr(0, 40)) +
                            "\"); a spreadsheet would run it when the file is opened");
        }
      }
    }
    return {FileClass::kTable, "CSV table", file + ": table"};
  }
  if (listed(limits.text_extensions, ext)) {
    return {FileClass::kText, "UTF-8 text", file + ": text"};
  }
  if (listed(limits.review_extensions, ext)) {
    return refuse(d.kind, "UTF-8 text " + named + ": content and extension disagree");
  }
  std::string allowed;
  for (const auto* list : {&limits.table_extensions, &limits.text_extensions}) {
    for (const auto& e : *list) allowed += (allowed.empty() ? "." : ", .") + e;
  }
  return refuse("unknown type",
                "UTF-8 text " + named +
                    " is not a type the profile lets out (tables and text: " + allowed + ")");
}

Expected<GatedFile> classify_path(const std::filesystem::path& path, bool declared_by_flags,
                                  const GateLimits& limits) {
  const std::string name = path.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    if (ec || !std::filesystem::exists(path, ec))
      return fail(Errc::kNotFound, name + ": no such file");
    return GatedFile{
        {FileClass::kRefused, "not a regular file", name + ": refused: not a regular file"}, {}};
  }
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return fail(Errc::kIo, name + ": " + ec.message());
  if (size > limits.max_file_bytes) {
    return GatedFile{
        {FileClass::kRefused, "file over the size limit",
         name + ": refused: " + std::to_string(size) + " bytes, more than the limit of " +
             std::to_string(limits.max_file_bytes)},
        {}};
  }
  auto content = read_file(path, limits.max_file_bytes);
  if (!content) return error_of(content);  // e.g. it grew past the limit since
  const bool sidecar = std::filesystem::exists(meta_path_for(path), ec);
  auto decision = classify_file(name, *content, declared_by_flags || sidecar, limits);
  return GatedFile{std::move(decision), std::move(content).value()};
}

}  // namespace enclave::exitcontrol

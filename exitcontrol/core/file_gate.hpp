// The file gate: what kind of output a file is, decided before any disclosure check, from its
// content (magic bytes, UTF-8 text) and its name together.
//
//   table   a .csv (profile's table extensions) declared by a sidecar or CLI flags, UTF-8 text
//           with no spreadsheet formulas in it; goes to the table checks.
//   text    UTF-8 text without NULs or other control bytes, with a text extension (and a
//           table's FILE.meta.toml sidecar); goes to the text checks.
//   review  PNG, JPEG, PDF, SVG whose content and extension agree; a steward must look.
//   refused everything else: archives (zip, gzip, tar, 7z, xz, bzip2, zstd, rar, lz4),
//           executables (ELF, PE, Mach-O, WebAssembly, Java class, scripts with #!),
//           spreadsheets and office documents (xlsx/ods/docx are zip containers, xls/doc
//           are OLE2), a CSV with cells that a spreadsheet would run as formulas, an
//           undeclared table, content and extension that disagree, unknown types, and files
//           over the size limit.
//
// Content wins over the name: a ZIP named .csv is refused as a ZIP. Limits come from the
// profile as plain numbers so this library does not depend on profiles.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace enclave::exitcontrol {

enum class FileClass { kTable, kText, kReview, kRefused };
const char* file_class_name(FileClass c);  // "table", "text", "review", "refused"

struct GateLimits {
  std::uint64_t max_file_bytes = 100ull << 20;
  std::vector<std::string> table_extensions = {"csv"};  // lower case, no dot
  std::vector<std::string> text_extensions = {"txt", "md", "log"};
  std::vector<std::string> review_extensions = {"png", "jpg", "jpeg", "pdf", "svg"};
};

struct GateDecision {
  FileClass verdict = FileClass::kRefused;
  std::string kind;    // what the content is: "CSV table", "PNG image", "ZIP archive", ...
  std::string reason;  // for people, naming the file: "out/x.csv: refused: ZIP archive
                       // (content starts PK\x03\x04) named .csv"
};

// name: the file name (its extension is compared with the content). content: the whole file.
// declared_table: a sidecar or CLI flags declare the file as a table.
GateDecision classify_file(std::string_view name, std::string_view content, bool declared_table,
                           const GateLimits& limits = {});

// A file read once for the gate and everything after it (hashing, parsing).
struct GatedFile {
  GateDecision decision;
  std::string content;  // the whole file; empty when it was refused before reading
};

// Reads path (refusing by size before reading) and classifies it; declared_table is true when
// declared_by_flags or path has a sidecar (meta_path_for). Errors only for I/O failures.
Expected<GatedFile> classify_path(const std::filesystem::path& path, bool declared_by_flags,
                                  const GateLimits& limits = {});

}  // namespace enclave::exitcontrol

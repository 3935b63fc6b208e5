// CSV parser, table loader and safe-output writer. Oracles: the raw records with the bytes
// around them rebuild the input exactly; each raw record splits back into the header's width;
// a safe version with nothing suppressed is the input itself; one with every cell suppressed
// parses and loads again with every cell marked.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "exitcontrol/core/csv.hpp"
#include "exitcontrol/core/load.hpp"
#include "exitcontrol/core/meta.hpp"
#include "exitcontrol/core/safe_output.hpp"

namespace {

using namespace enclave::exitcontrol;

const TableMeta& long_meta() {
  static const TableMeta meta = [] {
    auto m = parse_meta(R"(
kind = "frequency"
value = "n"
[[dimension]]
name = "region"
[dimension.hierarchy]
"Tohoku" = ["Aomori", "Miyagi"]
[[dimension]]
name = "age"
)",
                        "fuzz.meta.toml");
    if (!m) std::abort();
    return std::move(m).value();
  }();
  return meta;
}

const TableMeta& wide_meta() {
  static const TableMeta meta = [] {
    auto m = parse_meta(R"(
kind = "frequency"
layout = "wide"
column_dimension = "sex"
[[dimension]]
name = "region"
[[dimension]]
name = "sex"
)",
                        "fuzz.meta.toml");
    if (!m) std::abort();
    return std::move(m).value();
  }();
  return meta;
}

void check_safe_output(const LoadedTable& loaded, const TableMeta& meta) {
  std::vector<std::uint8_t> none(loaded.table.size(), 0);
  auto same = write_safe(loaded, none, "-");
  if (!same || *same != *loaded.bytes) __builtin_trap();
  std::vector<std::uint8_t> all(loaded.table.size(), 1);
  auto hidden = write_safe(loaded, all, "-");
  if (!hidden) __builtin_trap();
  LoadOptions options;
  options.suppression_markers = {"-"};
  auto again = load_table(*hidden, meta, "fuzz.csv", options);
  if (!again || again->table.size() != loaded.table.size() ||
      again->marked.size() != loaded.table.size()) {
    __builtin_trap();
  }
  (void)loaded.table.equations();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto doc = csv::parse(bytes);
  if (doc) {
    std::string rebuilt(bytes.data(), doc->raw_record(0).data());
    for (std::size_t r = 0; r < doc->records(); ++r) {
      auto raw = doc->raw_record(r);
      rebuilt += raw;
      if (csv::split_raw(raw).fields.size() != doc->width()) __builtin_trap();
    }
    auto last = doc->raw_record(doc->records() - 1);
    rebuilt.append(last.data() + last.size(), bytes.data() + bytes.size());
    if (rebuilt != bytes) __builtin_trap();
  } else {
    (void)doc.error().describe("fuzz.csv");
  }
  for (const TableMeta* meta : {&long_meta(), &wide_meta()}) {
    auto loaded = load_table(bytes, *meta, "fuzz.csv");
    if (loaded) check_safe_output(*loaded, *meta);
  }
  return 0;
}

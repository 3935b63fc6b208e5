// k-anonymity and l-diversity of row-level extracts (TableKind::kExtract). Rows that agree on
// every declared quasi-identifier form an equivalence class; the extract is k-anonymous when
// every class has at least k rows, and l-diverse when in every class each declared sensitive
// attribute takes at least l distinct values (distinct l-diversity) or has an entropy of at
// least log(l) (entropy l-diversity, Machanavajjhala et al. 2007).
//
// Missing values: an empty field is a missing value. A missing quasi-identifier is its own
// category, so rows missing the same quasi-identifiers (and agreeing on the rest) share one
// class; it is not a wildcard that matches every value. A missing sensitive value likewise
// counts as one value of its own.
//
// Rows are named by their 1-based CSV record number (the header is record 1), as in parse
// errors.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "exitcontrol/core/csv.hpp"

namespace enclave::exitcontrol {

struct Profile;

enum class LDiversityKind { kDistinct, kEntropy };

struct ExtractColumns {
  std::vector<std::string> quasi_identifiers;
  std::vector<std::string> sensitive;
};

struct KAnonOptions {
  int k = 10;
  int l = 2;  // l <= 1 checks nothing
  LDiversityKind l_kind = LDiversityKind::kDistinct;
  std::size_t max_rows_listed = 10;  // CSV record numbers named per failing class
  unsigned threads = 2;              // threads for the column-coding and diversity passes

  // k and l from the profile's k_anonymity and l_diversity.
  static KAnonOptions from_profile(const Profile& profile);
};

// A class that fails k-anonymity or l-diversity, as assembled by FailingClasses.
struct EquivalenceClass {
  std::vector<std::string> values;  // one per quasi-identifier, declared order; "" = missing
  std::uint32_t size = 0;
  std::vector<std::uint32_t> rows;  // the first max_rows_listed CSV record numbers, ascending
  bool below_k = false;
  // Per sensitive attribute, declared order: distinct values in the class, exp(entropy) of
  // their distribution (the "effective" number of values), and whether it fails l.
  std::vector<std::uint32_t> distinct;
  std::vector<double> entropy_l;
  std::vector<bool> below_l;

  bool fails_l() const;
  // "age=34, sex=F, ward=(missing)".
  std::string label(const std::vector<std::string>& quasi_identifiers) const;
};

namespace detail {
struct KAnonBuilder;
}

// Every class below k or failing l, smallest first (ties: the class whose first row comes
// first). Stored flat, because a raw extract of a million rows can have a million failing
// classes; operator[] assembles one class.
class FailingClasses {
 public:
  std::size_t size() const { return sizes_.size(); }
  bool empty() const { return sizes_.empty(); }
  EquivalenceClass operator[](std::size_t i) const;

  // The same facts without assembling a class.
  std::uint32_t class_size(std::size_t i) const { return sizes_[i]; }
  std::string_view value(std::size_t i, std::size_t quasi_identifier) const {
    return categories_[quasi_identifier][values_[i * categories_.size() + quasi_identifier]];
  }
  std::span<const std::uint32_t> rows(std::size_t i) const {
    return {rows_.data() + row_offsets_[i], row_offsets_[i + 1] - row_offsets_[i]};
  }

 private:
  friend struct detail::KAnonBuilder;
  int k_ = 0;
  int l_ = 0;
  LDiversityKind l_kind_ = LDiversityKind::kDistinct;
  std::vector<std::vector<std::string>> categories_;  // per quasi-identifier: id -> value
  std::vector<std::uint32_t> values_;                 // class i: category ids at i * q
  std::vector<std::uint32_t> sizes_;
  std::vector<std::uint32_t> row_offsets_ = {0};  // class i: rows_[row_offsets_[i] ...]
  std::vector<std::uint32_t> rows_;
  std::size_t sensitive_ = 0;
  std::vector<std::uint32_t> distinct_;  // class i: at i * sensitive_
  std::vector<double> entropy_l_;
};

struct KAnonReport {
  std::string file;
  ExtractColumns columns;
  int k = 0;
  int l = 0;
  LDiversityKind l_kind = LDiversityKind::kDistinct;

  std::size_t rows = 0;     // data records (the header not counted)
  std::size_t classes = 0;  // equivalence classes
  // {class size, number of classes of that size}, ascending sizes.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> size_histogram;
  std::vector<std::size_t> missing;  // per quasi-identifier: rows where it is missing

  std::size_t classes_below_k = 0;
  std::size_t rows_below_k = 0;
  std::size_t classes_below_l = 0;  // classes where at least one sensitive attribute fails l
  std::size_t rows_below_l = 0;

  FailingClasses failing;
  // Record suppression: the CSV record numbers of every row in a failing class, ascending.
  // Dropping whole classes leaves the others untouched, so what remains passes both rules.
  std::vector<std::uint32_t> suppressed_records;

  bool k_pass() const { return classes_below_k == 0; }
  bool l_pass() const { return classes_below_l == 0; }
  bool pass() const { return k_pass() && l_pass(); }
};

// Checks a parsed extract. Unknown or doubly declared columns and an empty quasi-identifier
// list are kInvalidArgument errors naming file and column.
Expected<KAnonReport> check_k_anonymity(const csv::Document& rows, std::string_view file,
                                        const ExtractColumns& columns,
                                        const KAnonOptions& options = {});
// Parses bytes first; a parse error names file, row and column.
Expected<KAnonReport> parse_and_check_k_anonymity(std::string_view csv_bytes, std::string_view file,
                                                  const ExtractColumns& columns,
                                                  const KAnonOptions& options = {});

// The safe version by record suppression: the extract without report.suppressed_records. The
// header and the kept records are copied byte for byte (quoting and line ends as in the input);
// a byte-order mark and trailing empty lines are not.
struct SuppressedExtract {
  std::string csv;
  std::size_t rows_removed = 0;
  std::size_t rows_kept = 0;
};
SuppressedExtract suppress_failing_classes(const csv::Document& rows, const KAnonReport& report);

}  // namespace enclave::exitcontrol

#include "exitcontrol/core/kanon.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <system_error>
#include <thread>

#include "exitcontrol/core/flat_index.hpp"
#include "exitcontrol/core/profile.hpp"

namespace enclave::exitcontrol {
namespace {

using detail::in_quotes;
using detail::kNone;

std::string header_list(const csv::Document& rows) {
  std::string out;
  for (std::string_view name : rows.header()) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// Column indices of the declared names, refusing unknown, repeated and doubly declared ones.
Expected<std::vector<std::size_t>> resolve_columns(const csv::Document& rows, std::string_view file,
                                                   const std::vector<std::string>& names,
                                                   std::string_view role,
                                                   const std::vector<std::size_t>& taken) {
  std::vector<std::size_t> out;
  for (const std::string& name : names) {
    const auto column = rows.column(name);
    if (!column) {
      return fail(Errc::kInvalidArgument, std::string(file) + ": no column " + in_quotes(name) +
                                              " (declared " + std::string(role) +
                                              "); columns: " + header_list(rows));
    }
    if (std::find(out.begin(), out.end(), *column) != out.end()) {
      return fail(Errc::kInvalidArgument, std::string(file) + ": column " + in_quotes(name) +
                                              " is declared twice as " + std::string(role));
    }
    if (std::find(taken.begin(), taken.end(), *column) != taken.end()) {
      return fail(Errc::kInvalidArgument, std::string(file) + ": column " + in_quotes(name) +
                                              " is declared both quasi-identifier and " +
                                              std::string(role));
    }
    out.push_back(*column);
  }
  return out;
}

// Runs task(0) ... task(count - 1) on up to `threads` threads. The tasks must be independent.
template <class Task>
void run_parallel(std::size_t count, unsigned threads, const Task& task) {
  const std::size_t workers = std::min<std::size_t>(std::max(1u, threads), count);
  auto stripe = [&](std::size_t first) {
    for (std::size_t i = first; i < count; i += workers) task(i);
  };
  std::vector<std::thread> pool;
  std::size_t first = 1;
  for (; first < workers; ++first) {
    try {
      pool.emplace_back(stripe, first);
    } catch (const std::system_error&) {
      break;  // no thread to be had: this thread takes the remaining stripes
    }
  }
  stripe(0);
  for (; first < workers; ++first) stripe(first);
  for (std::thread& t : pool) t.join();
}

// The declared columns as dense category ids, row by row (row 0 is CSV record 2). Ids follow
// first appearance in the file, whatever the number of threads.
struct CodedColumns {
  std::vector<std::vector<std::uint32_t>> ids;  // [column][row]
  std::vector<detail::StringIndex> categories;  // [column]
  std::vector<std::size_t> missing;             // [column]: empty fields
};

CodedColumns code_columns(const csv::Document& rows, const std::vector<std::size_t>& columns,
                          std::size_t n, unsigned threads) {
  const std::size_t m = columns.size();
  // Each thread codes a run of whole rows (one sweep over the field table) into its own
  // indexes; the runs are then merged in file order.
  constexpr std::size_t kMinRowsPerRun = 1 << 16;
  const std::size_t runs = std::clamp<std::size_t>(n / kMinRowsPerRun, 1, std::max(1u, threads));
  auto run_begin = [&](std::size_t t) { return n * t / runs; };

  CodedColumns out;
  out.ids.assign(m, std::vector<std::uint32_t>(n));
  out.missing.assign(m, 0);
  std::vector<std::vector<detail::StringIndex>> local(runs, std::vector<detail::StringIndex>(m));
  std::vector<std::vector<std::size_t>> missing(runs, std::vector<std::size_t>(m, 0));
  run_parallel(runs, threads, [&](std::size_t t) {
    std::vector<detail::StringIndex>& index = local[t];
    std::vector<std::size_t>& empty = missing[t];
    for (std::size_t r = run_begin(t); r < run_begin(t + 1); ++r) {
      for (std::size_t j = 0; j < m; ++j) {
        const std::string_view value = rows.field(r + 1, columns[j]);
        empty[j] += value.empty();
        out.ids[j][r] = index[j].intern(value);
      }
    }
  });
  out.categories = std::move(local[0]);
  run_parallel(m, threads, [&](std::size_t j) {
    out.missing[j] = missing[0][j];
    for (std::size_t t = 1; t < runs; ++t) {
      out.missing[j] += missing[t][j];
      const detail::StringIndex& index = local[t][j];
      std::vector<std::uint32_t> merged(index.size());
      for (std::uint32_t id = 0; id < index.size(); ++id)
        merged[id] = out.categories[j].intern(index.value(id));
      for (std::size_t r = run_begin(t); r < run_begin(t + 1); ++r)
        out.ids[j][r] = merged[out.ids[j][r]];
    }
  });
  return out;
}

// Equivalence classes: the quasi-identifier ids of a row read as one mixed-radix number, which
// a hash index turns into a dense class id (in order of first appearance). When the product of
// the columns' category counts would overflow 64 bits, the key built so far is first replaced
// by its dense id. The rows are then listed class by class (a counting sort), ascending
// within each class.
struct Grouping {
  std::size_t classes = 0;
  std::vector<std::uint32_t> class_of;  // [row]
  std::vector<std::uint32_t> offsets;   // class c: members[offsets[c] .. offsets[c + 1]]
  std::vector<std::uint32_t> members;

  std::uint32_t size(std::uint32_t c) const { return offsets[c + 1] - offsets[c]; }
};

std::size_t densify(std::vector<std::uint64_t>& keys) {
  detail::PairIndex index(keys.size());
  for (std::uint64_t& key : keys) key = index.insert(key).first;
  return index.size();
}

Grouping group_rows(const CodedColumns& coded, std::size_t quasi_identifiers, std::size_t n) {
  std::vector<std::uint64_t> keys(n, 0);
  std::uint64_t radix = 1;
  for (std::size_t j = 0; j < quasi_identifiers; ++j) {
    const std::vector<std::uint32_t>& ids = coded.ids[j];
    const std::uint64_t categories = coded.categories[j].size();
    if (radix > std::numeric_limits<std::uint64_t>::max() / categories) radix = densify(keys);
    for (std::size_t r = 0; r < n; ++r) keys[r] = keys[r] * categories + ids[r];
    radix *= categories;
  }
  Grouping out;
  out.classes = densify(keys);
  out.class_of.assign(keys.begin(), keys.end());
  keys = {};
  out.offsets.assign(out.classes + 1, 0);
  for (std::uint32_t c : out.class_of) ++out.offsets[c + 1];
  for (std::size_t c = 0; c < out.classes; ++c) out.offsets[c + 1] += out.offsets[c];
  std::vector<std::uint32_t> next(out.offsets.begin(), out.offsets.end() - 1);
  out.members.resize(n);
  for (std::size_t r = 0; r < n; ++r)
    out.members[next[out.class_of[r]]++] = static_cast<std::uint32_t>(r);
  return out;
}

// Per class, for one sensitive attribute: distinct values, and exp(entropy) of the value
// counts c: entropy = ln(size) - sum(c ln c) / size.
struct Diversity {
  std::vector<std::uint32_t> distinct;
  std::vector<double> entropy_l;
};

Diversity measure_diversity(const std::vector<std::uint32_t>& values, std::size_t categories,
                            const Grouping& groups) {
  Diversity out;
  out.distinct.resize(groups.classes);
  out.entropy_l.resize(groups.classes);
  std::vector<std::uint32_t> seen_in(categories, kNone);  // the last class that had the value
  std::vector<std::uint32_t> count(categories, 0);
  std::vector<std::uint32_t> present;
  for (std::uint32_t c = 0; c < groups.classes; ++c) {
    present.clear();
    for (std::uint32_t i = groups.offsets[c]; i < groups.offsets[c + 1]; ++i) {
      const std::uint32_t v = values[groups.members[i]];
      if (seen_in[v] != c) {
        seen_in[v] = c;
        count[v] = 0;
        present.push_back(v);
      }
      ++count[v];
    }
    double sum_c_log_c = 0;
    for (std::uint32_t v : present)
      if (count[v] > 1) sum_c_log_c += count[v] * std::log(static_cast<double>(count[v]));
    const double size = groups.size(c);
    out.distinct[c] = static_cast<std::uint32_t>(present.size());
    out.entropy_l[c] = present.size() == 1 ? 1.0 : std::exp(std::log(size) - sum_c_log_c / size);
  }
  return out;
}

bool fails_l(std::uint32_t distinct, double entropy_l, int l, LDiversityKind kind) {
  if (l <= 1) return false;
  if (kind == LDiversityKind::kDistinct) return distinct < static_cast<std::uint32_t>(l);
  // Entropy l-diversity: H >= ln(l); the tolerance keeps exact cases (l equal shares) passing.
  return entropy_l < l * (1 - 1e-12);
}

}  // namespace

namespace detail {

// Fills a report's flat failing-class storage.
struct KAnonBuilder {
  static void fill(FailingClasses& out, const KAnonOptions& options, const CodedColumns& coded,
                   std::size_t quasi_identifiers, const Grouping& groups,
                   const std::vector<Diversity>& diversity,
                   const std::vector<std::uint32_t>& failing) {
    out.k_ = options.k;
    out.l_ = options.l;
    out.l_kind_ = options.l_kind;
    out.sensitive_ = diversity.size();
    out.categories_.resize(quasi_identifiers);
    for (std::size_t j = 0; j < quasi_identifiers; ++j)
      out.categories_[j].assign(coded.categories[j].values().begin(),
                                coded.categories[j].values().end());
    out.values_.reserve(failing.size() * quasi_identifiers);
    out.sizes_.reserve(failing.size());
    out.row_offsets_.reserve(failing.size() + 1);
    out.distinct_.reserve(failing.size() * out.sensitive_);
    out.entropy_l_.reserve(failing.size() * out.sensitive_);
    for (std::uint32_t c : failing) {
      const std::uint32_t first_row = groups.members[groups.offsets[c]];
      for (std::size_t j = 0; j < quasi_identifiers; ++j)
        out.values_.push_back(coded.ids[j][first_row]);
      out.sizes_.push_back(groups.size(c));
      const std::uint32_t listed = std::min<std::uint32_t>(
          groups.size(c),
          static_cast<std::uint32_t>(std::min<std::size_t>(options.max_rows_listed, kNone)));
      for (std::uint32_t i = 0; i < listed; ++i)
        out.rows_.push_back(groups.members[groups.offsets[c] + i] + 2);
      out.row_offsets_.push_back(static_cast<std::uint32_t>(out.rows_.size()));
      for (const Diversity& d : diversity) {
        out.distinct_.push_back(d.distinct[c]);
        out.entropy_l_.push_back(d.entropy_l[c]);
      }
    }
  }
};

}  // namespace detail

KAnonOptions KAnonOptions::from_profile(const Profile& profile) {
  KAnonOptions out;
  out.k = profile.k_anonymity;
  out.l = profile.l_diversity;
  return out;
}

bool EquivalenceClass::fails_l() const {
  return std::find(below_l.begin(), below_l.end(), true) != below_l.end();
}

std::string EquivalenceClass::label(const std::vector<std::string>& quasi_identifiers) const {
  std::string out;
  for (std::size_t i = 0; i < values.size() && i < quasi_identifiers.size(); ++i) {
    if (i > 0) out += ", ";
    out += quasi_identifiers[i];
    out += '=';
    out += values[i].empty() ? std::string("(missing)") : values[i];
  }
  return out;
}

EquivalenceClass FailingClasses::operator[](std::size_t i) const {
  EquivalenceClass out;
  for (std::size_t j = 0; j < categories_.size(); ++j) out.values.emplace_back(value(i, j));
  out.size = sizes_[i];
  const auto listed = rows(i);
  out.rows.assign(listed.begin(), listed.end());
  out.below_k = sizes_[i] < static_cast<std::uint32_t>(k_);
  for (std::size_t s = 0; s < sensitive_; ++s) {
    const std::uint32_t distinct = distinct_[i * sensitive_ + s];
    const double entropy_l = entropy_l_[i * sensitive_ + s];
    out.distinct.push_back(distinct);
    out.entropy_l.push_back(entropy_l);
    out.below_l.push_back(fails_l(distinct, entropy_l, l_, l_kind_));
  }
  return out;
}

Expected<KAnonReport> check_k_anonymity(const csv::Document& rows, std::string_view file,
                                        const ExtractColumns& columns,
                                        const KAnonOptions& options) {
  if (columns.quasi_identifiers.empty()) {
    return fail(Errc::kInvalidArgument,
                std::string(file) + ": an extract needs at least one quasi-identifier");
  }
  if (options.k < 1) {
    return fail(Errc::kInvalidArgument,
                std::string(file) + ": k must be at least 1, not " + std::to_string(options.k));
  }
  auto qi_columns = resolve_columns(rows, file, columns.quasi_identifiers, "quasi-identifier", {});
  if (!qi_columns) return error_of(qi_columns);
  auto sensitive_columns =
      resolve_columns(rows, file, columns.sensitive, "sensitive", qi_columns.value());
  if (!sensitive_columns) return error_of(sensitive_columns);

  const std::size_t n = rows.records() == 0 ? 0 : rows.records() - 1;
  // Record numbers are 32-bit; the CSV parser's own limit is far below this.
  if (n > std::numeric_limits<std::uint32_t>::max() - 2) {
    return fail(Errc::kInvalidArgument, std::string(file) + ": too many rows");
  }

  KAnonReport report;
  report.file = std::string(file);
  report.columns = columns;
  report.k = options.k;
  report.l = options.l;
  report.l_kind = options.l_kind;
  report.rows = n;
  report.missing.assign(columns.quasi_identifiers.size(), 0);
  if (n == 0) return report;

  const std::size_t q = qi_columns->size();
  const std::size_t s = sensitive_columns->size();
  std::vector<std::size_t> declared = qi_columns.value();
  declared.insert(declared.end(), sensitive_columns->begin(), sensitive_columns->end());
  const CodedColumns coded = code_columns(rows, declared, n, options.threads);
  for (std::size_t j = 0; j < q; ++j) report.missing[j] = coded.missing[j];

  const Grouping groups = group_rows(coded, q, n);
  report.classes = groups.classes;
  std::uint32_t largest = 0;
  for (std::uint32_t c = 0; c < groups.classes; ++c) largest = std::max(largest, groups.size(c));
  std::vector<std::uint32_t> classes_of_size(std::size_t{largest} + 1, 0);
  for (std::uint32_t c = 0; c < groups.classes; ++c) ++classes_of_size[groups.size(c)];
  for (std::uint32_t size = 1; size <= largest; ++size) {
    if (classes_of_size[size] > 0) report.size_histogram.emplace_back(size, classes_of_size[size]);
  }

  std::vector<Diversity> diversity(s);
  run_parallel(s, options.threads, [&](std::size_t i) {
    diversity[i] = measure_diversity(coded.ids[q + i], coded.categories[q + i].size(), groups);
  });

  // Failing classes, ordered by size with a stable counting sort: class ids follow first
  // appearance, so ties stay in the order of their first rows.
  std::vector<std::uint8_t> is_failing(groups.classes, 0);
  std::vector<std::uint32_t> failing_of_size(std::size_t{largest} + 2, 0);
  for (std::uint32_t c = 0; c < groups.classes; ++c) {
    const std::uint32_t size = groups.size(c);
    const bool below_k = size < static_cast<std::uint32_t>(options.k);
    bool below_l = false;
    for (const Diversity& d : diversity)
      below_l = below_l || fails_l(d.distinct[c], d.entropy_l[c], options.l, options.l_kind);
    if (below_k) {
      ++report.classes_below_k;
      report.rows_below_k += size;
    }
    if (below_l) {
      ++report.classes_below_l;
      report.rows_below_l += size;
    }
    if (below_k || below_l) {
      is_failing[c] = 1;
      ++failing_of_size[size + 1];
    }
  }
  for (std::size_t size = 1; size < failing_of_size.size(); ++size)
    failing_of_size[size] += failing_of_size[size - 1];
  std::vector<std::uint32_t> failing(failing_of_size.back());
  for (std::uint32_t c = 0; c < groups.classes; ++c) {
    if (is_failing[c]) failing[failing_of_size[groups.size(c)]++] = c;
  }
  detail::KAnonBuilder::fill(report.failing, options, coded, q, groups, diversity, failing);

  std::size_t suppressed = 0;
  for (std::uint32_t c : failing) suppressed += groups.size(c);
  report.suppressed_records.reserve(suppressed);
  for (std::size_t r = 0; r < n; ++r) {
    if (is_failing[groups.class_of[r]])
      report.suppressed_records.push_back(static_cast<std::uint32_t>(r + 2));
  }
  return report;
}

Expected<KAnonReport> parse_and_check_k_anonymity(std::string_view csv_bytes, std::string_view file,
                                                  const ExtractColumns& columns,
                                                  const KAnonOptions& options) {
  auto rows = csv::parse(csv_bytes);
  if (!rows) return fail(Errc::kInvalidArgument, rows.error().describe(file));
  return check_k_anonymity(rows.value(), file, columns, options);
}

SuppressedExtract suppress_failing_classes(const csv::Document& rows, const KAnonReport& report) {
  SuppressedExtract out;
  if (rows.records() == 0) return out;
  out.csv += rows.raw_record(0);
  auto next_removed = report.suppressed_records.begin();
  for (std::size_t record = 1; record < rows.records(); ++record) {
    // suppressed_records holds 1-based numbers: record index + 1.
    if (next_removed != report.suppressed_records.end() && *next_removed == record + 1) {
      ++next_removed;
      ++out.rows_removed;
      continue;
    }
    out.csv += rows.raw_record(record);
    ++out.rows_kept;
  }
  return out;
}

}  // namespace enclave::exitcontrol

#include "exitcontrol/service/differencing.hpp"

#include "exitcontrol/core/primary.hpp"
#include "exitcontrol/lp/attacker.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>

namespace enclave::exitcontrol {
namespace {

constexpr double kEps = 1e-6;
constexpr std::uint32_t kNoParent = UINT32_MAX;
constexpr const char* kUnlisted = "(not listed)";

// One dimension over all releases compared: the union of their categories with the merged
// hierarchy, its leaves, and category sets interned as sorted leaf lists.
struct UniverseDim {
  std::string name;
  std::unordered_map<std::string, std::uint32_t> ids;
  std::vector<std::string> labels;
  std::vector<std::uint32_t> parent;
  std::vector<std::string> parent_from;  // the release that declared the parent
  std::vector<std::vector<std::uint32_t>> children;
  std::vector<std::uint32_t> leaf_index;  // per category; kNoParent when not a leaf
  std::uint32_t leaf_count = 0;
  std::map<std::vector<std::uint32_t>, std::uint32_t> set_ids;
  std::vector<std::vector<std::uint32_t>> sets;  // set id -> sorted leaf indices
  std::vector<std::uint32_t> category_set;       // category -> set id
  std::uint32_t all = 0;                         // the set of every leaf
  bool shown = false;                            // some release has it as a dimension

  std::uint32_t intern(const std::string& label) {
    auto [it, added] = ids.try_emplace(label, static_cast<std::uint32_t>(labels.size()));
    if (added) {
      labels.push_back(label);
      parent.push_back(kNoParent);
      parent_from.emplace_back();
    }
    return it->second;
  }

  bool is_ancestor(std::uint32_t maybe_ancestor, std::uint32_t of) const {
    for (std::uint32_t at = of; at != kNoParent; at = parent[at]) {
      if (at == maybe_ancestor) return true;
    }
    return false;
  }

  std::uint32_t set_id(std::vector<std::uint32_t> leaves) {
    std::sort(leaves.begin(), leaves.end());
    leaves.erase(std::unique(leaves.begin(), leaves.end()), leaves.end());
    auto [it, added] = set_ids.try_emplace(leaves, static_cast<std::uint32_t>(sets.size()));
    if (added) sets.push_back(std::move(leaves));
    return it->second;
  }

  void collect_leaves(std::uint32_t c, std::vector<std::uint32_t>& out) const {
    if (children[c].empty()) {
      out.push_back(leaf_index[c]);
      return;
    }
    for (auto child : children[c]) collect_leaves(child, out);
  }

  void finish() {
    children.assign(labels.size(), {});
    for (std::uint32_t c = 0; c < labels.size(); ++c) {
      if (parent[c] != kNoParent) children[parent[c]].push_back(c);
    }
    leaf_index.assign(labels.size(), kNoParent);
    for (std::uint32_t c = 0; c < labels.size(); ++c) {
      if (children[c].empty()) leaf_index[c] = leaf_count++;
    }
    std::vector<std::uint32_t> every(leaf_count);
    for (std::uint32_t i = 0; i < leaf_count; ++i) every[i] = i;
    all = set_id(std::move(every));
    category_set.resize(labels.size());
    for (std::uint32_t c = 0; c < labels.size(); ++c) {
      std::vector<std::uint32_t> leaves;
      collect_leaves(c, leaves);
      category_set[c] = set_id(std::move(leaves));
    }
  }

  std::string describe(std::uint32_t set) const {
    if (set == all) return name + "=all";
    std::vector<std::string> names;
    for (std::uint32_t c = 0; c < labels.size(); ++c) {
      if (leaf_index[c] != kNoParent &&
          std::binary_search(sets[set].begin(), sets[set].end(), leaf_index[c])) {
        names.push_back(labels[c]);
      }
    }
    if (names.size() == 1) return name + "=" + names[0];
    std::string out = name + " in {";
    for (std::size_t i = 0; i < names.size(); ++i) out += (i ? "," : "") + names[i];
    return out + "}";
  }
};

struct CellRef {
  std::uint32_t table;  // 0: the candidate; i: earlier[i - 1]
  std::uint32_t cell;
};

class Universe {
 public:
  std::vector<UniverseDim> dims;

  Status add(const ReleasedTable& t) {
    for (const auto& d : t.dims) {
      auto& u = dim(d.name);
      u.shown = true;
      for (std::size_t c = 0; c < d.categories.size(); ++c) {
        if (d.categories[c] == t.total_label) continue;
        const auto child = u.intern(d.categories[c]);
        const auto p = d.parent[c];
        if (p < 0 || d.categories[static_cast<std::size_t>(p)] == t.total_label) continue;
        ENCLAVE_TRY(set_parent(u, child, u.intern(d.categories[static_cast<std::size_t>(p)]), t));
      }
    }
    for (const auto& [name, categories] : t.filter) {
      auto& u = dim(name);
      for (const auto& c : categories) u.intern(c);
    }
    return {};
  }

  // A dimension only ever filtered, never shown, has categories nobody listed: one leaf
  // stands for them, so that "everyone" minus "the listed ages" is a group of its own.
  void finish() {
    for (auto& d : dims) {
      if (!d.shown) d.intern(kUnlisted);
      d.finish();
    }
  }

  // The atoms a cell counts, as one interned leaf set per universe dimension.
  // Not const: a filter's union of categories may be a set no category has yet.
  std::vector<std::uint32_t> signature(const ReleasedTable& t, std::size_t cell) {
    std::vector<std::uint32_t> sig(dims.size());
    for (std::size_t u = 0; u < dims.size(); ++u) sig[u] = dims[u].all;
    for (std::size_t d = 0; d < t.dims.size(); ++d) {
      const auto& label = t.dims[d].categories[t.coords[cell * t.dims.size() + d]];
      if (label == t.total_label) continue;
      const auto u = by_name_.at(t.dims[d].name);
      sig[u] = dims[u].category_set[dims[u].ids.at(label)];
    }
    for (const auto& [name, categories] : t.filter) {
      const auto u = by_name_.at(name);
      auto& dim = dims[u];
      std::vector<std::uint32_t> leaves;
      for (const auto& c : categories) {
        const auto& s = dim.sets[dim.category_set[dim.ids.at(c)]];
        leaves.insert(leaves.end(), s.begin(), s.end());
      }
      sig[u] = dim.set_id(std::move(leaves));
    }
    return sig;
  }

  std::string describe(const std::vector<std::uint32_t>& sig) const {
    std::string out;
    for (std::size_t u = 0; u < dims.size(); ++u) {
      if (sig[u] == dims[u].all) continue;
      out += (out.empty() ? "" : ", ") + dims[u].describe(sig[u]);
    }
    return out.empty() ? "everyone" : out;
  }

 private:
  UniverseDim& dim(const std::string& name) {
    auto [it, added] = by_name_.try_emplace(name, dims.size());
    if (added) dims.push_back(UniverseDim{.name = name});
    return dims[it->second];
  }

  static Status set_parent(UniverseDim& u, std::uint32_t child, std::uint32_t parent,
                           const ReleasedTable& t) {
    if (u.parent[child] == parent) return {};
    if (u.parent[child] != kNoParent) {
      return fail(Errc::kInvalidArgument,
                  "dimension " + u.name + ": " + t.name + " puts \"" + u.labels[child] +
                      "\" under \"" + u.labels[parent] + "\" but " + u.parent_from[child] +
                      " puts it under \"" + u.labels[u.parent[child]] +
                      "\"; releases of one population must share one hierarchy");
    }
    if (u.is_ancestor(child, parent)) {
      return fail(Errc::kInvalidArgument, "dimension " + u.name + ": " + t.name +
                                              " makes a cycle through \"" + u.labels[child] + "\"");
    }
    u.parent[child] = parent;
    u.parent_from[child] = t.name;
    return {};
  }

  std::unordered_map<std::string, std::size_t> by_name_;
};

std::string key_of(const std::vector<std::uint32_t>& sig, std::size_t masked) {
  std::string key(sig.size() * sizeof(std::uint32_t), '\0');
  for (std::size_t u = 0; u < sig.size(); ++u) {
    const std::uint32_t v = u == masked ? UINT32_MAX : sig[u];
    std::memcpy(key.data() + u * sizeof v, &v, sizeof v);
  }
  return key;
}

bool strict_subset(const std::vector<std::uint32_t>& a, const std::vector<std::uint32_t>& b) {
  return a.size() < b.size() && std::includes(b.begin(), b.end(), a.begin(), a.end());
}

// What a derived group of `size` units means under the profile: nullopt when it may be known.
std::optional<bool> small_group(double size, const Profile& profile) {
  if (size >= 1 - kEps && size < profile.threshold - kEps) return true;
  if (std::abs(size) < kEps) {
    if (profile.zeros == ZerosPolicy::kDisclosive) return true;
    if (profile.zeros == ZerosPolicy::kReview) return false;
  }
  return std::nullopt;
}

// Mixed-radix atom indexes of the product of leaf sets (one per dimension).
void enumerate_atoms(const Universe& u, const std::vector<const std::vector<std::uint32_t>*>& sets,
                     std::vector<lp::Term>& out) {
  std::vector<std::size_t> at(sets.size(), 0);
  for (const auto* s : sets) {
    if (s->empty()) return;
  }
  if (sets.empty()) {
    out.push_back({0, 1.0});
    return;
  }
  for (;;) {
    std::uint64_t index = 0;
    for (std::size_t d = 0; d < sets.size(); ++d) {
      index = index * u.dims[d].leaf_count + (*sets[d])[at[d]];
    }
    out.push_back({static_cast<std::uint32_t>(index), 1.0});
    std::size_t d = sets.size();
    while (d > 0) {
      --d;
      if (++at[d] < sets[d]->size()) break;
      at[d] = 0;
      if (d == 0) return;
    }
  }
}

struct PendingTarget {
  std::vector<std::uint32_t> big, small;  // signatures; the group is big minus small
  std::size_t dim;                        // the dimension they differ in
  DifferencingFinding context;
};

}  // namespace

const char* differencing_kind_name(DifferencingFinding::Kind kind) {
  switch (kind) {
    case DifferencingFinding::Kind::kRevealed:
      return "revealed";
    case DifferencingFinding::Kind::kDifference:
      return "difference";
    case DifferencingFinding::Kind::kNarrowed:
      return "narrowed";
    case DifferencingFinding::Kind::kInconsistent:
      return "inconsistent";
    case DifferencingFinding::Kind::kNotAudited:
      return "not-audited";
  }
  return "?";
}

bool DifferencingReport::disclosive() const {
  return std::any_of(findings.begin(), findings.end(),
                     [](const DifferencingFinding& f) { return f.disclosive; });
}

Expected<DifferencingReport> audit_differencing(const ReleasedTable& candidate,
                                                std::span<const ReleasedTable> earlier,
                                                const Profile& profile,
                                                const DifferencingOptions& options) {
  DifferencingReport report;
  report.releases = earlier.size();
  if (earlier.empty()) return report;

  std::vector<const ReleasedTable*> tables{&candidate};
  for (const auto& t : earlier) tables.push_back(&t);
  Universe universe;
  for (const auto* t : tables) ENCLAVE_TRY(universe.add(*t));
  universe.finish();

  std::vector<std::vector<std::vector<std::uint32_t>>> sigs(tables.size());
  for (std::size_t t = 0; t < tables.size(); ++t) {
    sigs[t].reserve(tables[t]->size());
    for (std::size_t c = 0; c < tables[t]->size(); ++c) {
      sigs[t].push_back(universe.signature(*tables[t], c));
    }
  }
  const bool counts = candidate.measure == "count";
  auto size_of = [&](CellRef r) {
    const auto& t = *tables[r.table];
    return counts ? t.published[r.cell] : t.contributors[r.cell];
  };
  auto finding = [&](DifferencingFinding::Kind kind, CellRef cand, CellRef other) {
    DifferencingFinding f{.kind = kind};
    f.cell = cand.cell;
    f.release = tables[other.table]->name;
    f.candidate_cell = candidate.label(cand.cell);
    f.other_cell = tables[other.table]->label(other.cell);
    return f;
  };

  // Same atoms: a hidden cell published elsewhere, or one group published with two values.
  std::unordered_map<std::string, std::vector<CellRef>> same;
  for (std::uint32_t t = 0; t < tables.size(); ++t) {
    for (std::uint32_t c = 0; c < tables[t]->size(); ++c) {
      same[key_of(sigs[t][c], SIZE_MAX)].push_back({t, c});
    }
  }
  for (const auto& [key, refs] : same) {
    for (const auto& cand : refs) {
      if (cand.table != 0) continue;
      const double mine = candidate.published[cand.cell];
      for (const auto& other : refs) {
        if (other.table == 0) continue;
        const double theirs = tables[other.table]->published[other.cell];
        if (is_missing(theirs)) continue;
        if (is_missing(mine)) {
          auto f = finding(DifferencingFinding::Kind::kRevealed, cand, other);
          f.group = universe.describe(sigs[0][cand.cell]);
          f.lo = f.hi = theirs;
          f.reason = "hidden here, but " + f.release + " published it as " + format_number(theirs);
          report.findings.push_back(std::move(f));
          break;
        }
        if (std::abs(mine - theirs) > kEps) {
          auto f = finding(DifferencingFinding::Kind::kInconsistent, cand, other);
          f.disclosive = false;
          f.group = universe.describe(sigs[0][cand.cell]);
          f.lo = f.hi = mine;
          f.reason = "published here as " + format_number(mine) + " but as " +
                     format_number(theirs) + " in " + f.release +
                     " (same group, different population or a changed extract?)";
          report.findings.push_back(std::move(f));
          break;
        }
      }
    }
  }

  // Cells that differ along one dimension: their difference is a group of its own.
  std::vector<PendingTarget> pending;
  for (std::size_t d = 0; d < universe.dims.size(); ++d) {
    const auto& dim = universe.dims[d];
    std::unordered_map<std::string, std::vector<CellRef>> buckets;
    for (std::uint32_t t = 0; t < tables.size(); ++t) {
      for (std::uint32_t c = 0; c < tables[t]->size(); ++c) {
        buckets[key_of(sigs[t][c], d)].push_back({t, c});
      }
    }
    for (const auto& [key, refs] : buckets) {
      for (const auto& cand : refs) {
        if (cand.table != 0) continue;
        for (const auto& other : refs) {
          if (other.table == 0) continue;
          const auto& a = dim.sets[sigs[0][cand.cell][d]];
          const auto& b = dim.sets[sigs[other.table][other.cell][d]];
          CellRef big = cand, small = other;
          if (strict_subset(a, b)) {
            std::swap(big, small);
          } else if (!strict_subset(b, a)) {
            continue;
          }
          ++report.pairs;
          std::vector<std::uint32_t> rest;
          const auto& big_set = dim.sets[sigs[big.table][big.cell][d]];
          const auto& small_set = dim.sets[sigs[small.table][small.cell][d]];
          std::set_difference(big_set.begin(), big_set.end(), small_set.begin(), small_set.end(),
                              std::back_inserter(rest));
          auto group_sig = sigs[big.table][big.cell];
          auto& mutable_dim = universe.dims[d];
          group_sig[d] = mutable_dim.set_id(rest);
          const std::string group = universe.describe(group_sig);
          const bool published = !is_missing(tables[big.table]->published[big.cell]) &&
                                 !is_missing(tables[small.table]->published[small.cell]);
          auto f = finding(DifferencingFinding::Kind::kDifference, cand, other);
          f.group = group;
          if (published) {
            const double size = size_of(big) - size_of(small);
            if (is_missing(size)) continue;
            const auto small_result = small_group(size, profile);
            if (!small_result) continue;
            f.disclosive = *small_result;
            f.lo = f.hi = size;
            f.reason = "\"" + tables[big.table]->label(big.cell) + "\" (" +
                       tables[big.table]->name + ") minus \"" +
                       tables[small.table]->label(small.cell) + "\" (" + tables[small.table]->name +
                       ") leaves " + format_number(size) + (counts ? "" : " contributors") +
                       " in " + group;
            report.findings.push_back(std::move(f));
          } else if (counts) {
            pending.push_back({sigs[big.table][big.cell], sigs[small.table][small.cell], d, f});
          }
        }
      }
    }
  }

  // The attacker's LP over the atoms, for hidden cells of the candidate and for differences
  // that involve a hidden cell.
  std::vector<std::uint32_t> hidden;
  for (std::uint32_t c = 0; c < candidate.size(); ++c) {
    if (is_missing(candidate.published[c])) hidden.push_back(c);
  }
  if (!counts || (hidden.empty() && pending.empty())) return report;

  double atoms = 1;
  for (const auto& d : universe.dims) atoms *= d.leaf_count;
  if (atoms > static_cast<double>(options.max_atoms)) {
    DifferencingFinding f{.kind = DifferencingFinding::Kind::kNotAudited, .disclosive = false};
    f.reason = "the releases combine into " + format_number(atoms) +
               " groups, more than the LP audit models (" + std::to_string(options.max_atoms) +
               "); review the hidden cells against the earlier releases by hand";
    report.findings.push_back(std::move(f));
    return report;
  }
  report.atoms = static_cast<std::size_t>(atoms);

  auto atoms_of = [&](const std::vector<std::uint32_t>& sig) {
    std::vector<const std::vector<std::uint32_t>*> sets;
    for (std::size_t u = 0; u < sig.size(); ++u) sets.push_back(&universe.dims[u].sets[sig[u]]);
    std::vector<lp::Term> terms;
    enumerate_atoms(universe, sets, terms);
    return terms;
  };

  lp::LinearSystem system;
  system.lower.assign(report.atoms, 0);
  system.upper.assign(report.atoms, lp::kInfinity);
  for (const auto& [key, refs] : same) {
    for (const auto& r : refs) {
      const double v = tables[r.table]->published[r.cell];
      if (is_missing(v)) continue;
      system.rows.push_back({atoms_of(sigs[r.table][r.cell]), v});
      break;  // one equation per group; differing values are reported above
    }
  }
  std::vector<std::vector<lp::Term>> targets;
  for (auto c : hidden) targets.push_back(atoms_of(sigs[0][c]));
  for (const auto& p : pending) {
    auto big = atoms_of(p.big);
    auto small = atoms_of(p.small);
    std::sort(small.begin(), small.end(), [](auto x, auto y) { return x.var < y.var; });
    std::erase_if(big, [&](const lp::Term& t) {
      return std::binary_search(small.begin(), small.end(), t,
                                [](auto x, auto y) { return x.var < y.var; });
    });
    targets.push_back(std::move(big));
  }
  report.lp_targets = targets.size();
  auto intervals = lp::bounds(system, targets, options.lp);
  if (!intervals) {
    DifferencingFinding f{.kind = intervals.error().code == Errc::kTimeout
                                      ? DifferencingFinding::Kind::kNotAudited
                                      : DifferencingFinding::Kind::kInconsistent,
                          .disclosive = false};
    f.reason = "the LP over this table and " + std::to_string(earlier.size()) +
               " earlier releases could not be solved: " + intervals.error().message;
    report.findings.push_back(std::move(f));
    return report;
  }

  const std::string releases =
      std::to_string(earlier.size()) + " earlier release" + (earlier.size() == 1 ? "" : "s");
  for (std::size_t i = 0; i < hidden.size(); ++i) {
    const auto c = hidden[i];
    const auto [lo, hi] = (*intervals)[i];
    const double a = candidate.value[c];
    if (is_missing(a)) continue;
    const auto need = lp::required_protection(a, profile);
    const double up = need.upper, down = need.lower;
    if (hi >= a + up - kEps && lo <= a - down + kEps) continue;
    DifferencingFinding f{.kind = DifferencingFinding::Kind::kNarrowed};
    f.cell = c;
    f.candidate_cell = candidate.label(c);
    f.group = universe.describe(sigs[0][c]);
    f.lo = lo;
    f.hi = hi;
    f.reason = "hidden, but this table with " + releases + " pins it to [" + format_number(lo) +
               ", " + format_number(hi) + "] (needs [" + format_number(a - down) + ", " +
               format_number(a + up) + "] or wider)";
    report.findings.push_back(std::move(f));
  }
  for (std::size_t i = 0; i < pending.size(); ++i) {
    const auto [lo, hi] = (*intervals)[hidden.size() + i];
    auto f = pending[i].context;
    f.lo = lo;
    f.hi = hi;
    if (hi - lo < kEps) {
      const auto small_result = small_group(lo, profile);
      if (!small_result) continue;
      f.disclosive = *small_result;
      f.reason = "the group " + f.group + " is exactly " + format_number(lo) + " given " + releases;
    } else if (lo >= 1 - kEps && hi < profile.threshold - kEps) {
      f.kind = DifferencingFinding::Kind::kNarrowed;
      f.reason = "the group " + f.group + " is known to hold between " + format_number(lo) +
                 " and " + format_number(hi) + " given " + releases;
    } else {
      continue;
    }
    report.findings.push_back(std::move(f));
  }
  return report;
}

}  // namespace enclave::exitcontrol

// The differencing audit: a candidate table checked together with every earlier release of
// the same project, population and measure. Each cell is read as the set of finest
// combinations of categories it counts (its "atoms", over the union of all dimensions, with
// hierarchies merged across releases); then
//  - a hidden cell of the candidate that an earlier release published is revealed;
//  - two cells, one from the candidate and one from an earlier release, that differ along one
//    dimension (same categories elsewhere, one category set inside the other) expose their
//    difference: a group that is small (1 to threshold-1 units, or 0 where zeros are
//    disclosive) fails;
//  - where a hidden cell is involved, the attacker's LP over the atoms bounds the difference
//    and every hidden cell of the candidate, with every published cell of every release as an
//    equation.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "exitcontrol/core/profile.hpp"
#include "exitcontrol/lp/linear_system.hpp"
#include "exitcontrol/service/ledger.hpp"

namespace enclave::exitcontrol {

struct DifferencingOptions {
  // Combinations of categories the LP may model; beyond this the LP part is not run and the
  // report says so (the pairwise checks still run).
  std::size_t max_atoms = 200'000;
  lp::BoundsOptions lp;
};

struct DifferencingFinding {
  enum class Kind {
    kRevealed,      // a hidden cell of the candidate was published by an earlier release
    kDifference,    // subtracting two published cells exposes a small group
    kNarrowed,      // the LP pins a group or a hidden cell too closely
    kInconsistent,  // the same group published with different values
    kNotAudited,    // the LP part could not run (too many combinations, time limit)
  };
  Kind kind;
  bool disclosive = true;                         // fail; false: to review
  std::optional<std::uint32_t> cell;              // the candidate's cell, where one is involved
  std::string release;                            // the earlier release involved ("" when several)
  std::string candidate_cell, other_cell, group;  // labels for people
  double lo = 0, hi = 0;                          // what the attacker knows of the group
  std::string reason;
};
const char* differencing_kind_name(DifferencingFinding::Kind kind);

struct DifferencingReport {
  std::size_t releases = 0;  // earlier releases compared
  std::size_t pairs = 0;     // nested cell pairs examined
  std::size_t atoms = 0;     // LP variables (0 when the LP was not needed)
  std::size_t lp_targets = 0;
  std::vector<DifferencingFinding> findings;
  bool disclosive() const;
};

// candidate.value must hold the true values (released_view of the checked table).
Expected<DifferencingReport> audit_differencing(const ReleasedTable& candidate,
                                                std::span<const ReleasedTable> earlier,
                                                const Profile& profile,
                                                const DifferencingOptions& options = {});

}  // namespace enclave::exitcontrol

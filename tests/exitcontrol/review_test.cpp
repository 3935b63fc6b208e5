// The export review's rules: the analyst's choices, four eyes, two stewards, exceptions,
// closed requests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "exitcontrol/review/request.hpp"

namespace enclave::exitcontrol::review {
namespace {

using ::testing::HasSubstr;

ExportFile checked_file(std::uint32_t index, const std::string& name, Outcome outcome,
                        bool safe = false) {
  ExportFile f;
  f.index = index;
  f.name = name;
  f.sha256 = std::string(64, 'a' + static_cast<char>(index));
  f.checked = true;
  f.outcome = outcome;
  if (safe) {
    f.safe_sha256 = std::string(64, 'f');
    f.safe_outcome = Outcome::kPass;
  }
  // What the service does after the check: passing and review files go as they are.
  if (outcome != Outcome::kFail) f.choice = Choice::kOriginal;
  return f;
}

ExportRequest request_of(std::vector<ExportFile> files, int stewards = 1) {
  ExportRequest r;
  r.id = 7;
  r.project = "P-1";
  r.requester = "ana";
  r.stewards_required = stewards;
  r.files = std::move(files);
  r.state = RequestState::kChecking;
  settle(r, 0);
  return r;
}

const StewardRights kSteve{"steve", true, true};
const StewardRights kSue{"sue", true, true};

TEST(Review, PassingFilesWaitForReviewAndOneApprovalReleasesThem) {
  auto r = request_of({checked_file(0, "a.csv", Outcome::kPass)});
  EXPECT_EQ(r.state, RequestState::kWaitingReview);
  ASSERT_TRUE(decide(r, 0, kSteve, Verdict::kApprove, "", 10));
  EXPECT_EQ(r.state, RequestState::kApproved);
  EXPECT_EQ(r.updated_ms, 10);
  EXPECT_EQ(r.files[0].status(1), FileStatus::kApproved);
}

TEST(Review, AFailingFileWaitsForTheAnalystsChoice) {
  auto r = request_of(
      {checked_file(0, "a.csv", Outcome::kPass), checked_file(1, "b.csv", Outcome::kFail, true)});
  EXPECT_EQ(r.state, RequestState::kNeedsAnalyst);
  auto early = decide(r, 0, kSteve, Verdict::kApprove, "", 1);
  ASSERT_FALSE(early);
  EXPECT_THAT(early.error().message, HasSubstr("not waiting for review"));
  EXPECT_THAT(r.state_reason, HasSubstr("accept its safe version"));
  ASSERT_TRUE(accept_safe_version(r, 1, 2));
  EXPECT_EQ(r.state, RequestState::kWaitingReview);
  EXPECT_EQ(r.state_reason, "waiting for a steward to decide on each file");
  EXPECT_EQ(r.files[1].chosen_sha256(), std::string(64, 'f'));
  EXPECT_EQ(r.files[0].chosen_sha256(), r.files[0].sha256);
}

TEST(Review, SafeVersionsThatFailOrDoNotExistCannotBeAccepted) {
  auto r = request_of({checked_file(0, "a.csv", Outcome::kFail)});
  auto none = accept_safe_version(r, 0, 1);
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message, HasSubstr("R-7 file 0 (a.csv) has no safe version"));
  r.files[0].safe_sha256 = std::string(64, 'f');
  r.files[0].safe_outcome = Outcome::kFail;
  EXPECT_THAT(accept_safe_version(r, 0, 1).error().message, HasSubstr("fails the checks too"));
  EXPECT_EQ(accept_safe_version(r, 3, 1).error().code, Errc::kInvalidArgument);
}

TEST(Review, AnExceptionNeedsTheAnalystsReasonAndAStewardsReason) {
  auto r = request_of({checked_file(0, "a.csv", Outcome::kFail, true)});
  EXPECT_EQ(ask_exception(r, 0, "  \n", 1).error().code, Errc::kInvalidArgument);
  ASSERT_TRUE(ask_exception(r, 0, "the cells are national totals already published", 1));
  EXPECT_EQ(r.state, RequestState::kWaitingReview);
  auto bare = decide(r, 0, kSteve, Verdict::kApprove, "", 2);
  ASSERT_FALSE(bare);
  EXPECT_THAT(bare.error().message, HasSubstr("steward's written reason"));
  ASSERT_TRUE(decide(r, 0, kSteve, Verdict::kApprove, "checked against the 2024 yearbook", 3));
  EXPECT_EQ(r.state, RequestState::kApproved);

  auto passing = request_of({checked_file(0, "a.csv", Outcome::kPass)});
  EXPECT_THAT(ask_exception(passing, 0, "why not", 1).error().message,
              HasSubstr("needs no exception"));
}

TEST(Review, TheRequesterNeverDecidesOnTheirOwnRequest) {
  auto r = request_of({checked_file(0, "a.csv", Outcome::kPass)});
  StewardRights self{"ana", true, true};
  auto own = decide(r, 0, self, Verdict::kApprove, "fine", 1);
  ASSERT_FALSE(own);
  EXPECT_EQ(own.error().code, Errc::kPermission);
  EXPECT_THAT(own.error().message, HasSubstr("never reviews their own request"));
  EXPECT_EQ(r.state, RequestState::kWaitingReview);
  EXPECT_TRUE(r.files[0].decisions.empty());
}

TEST(Review, OnlyStewardsOfTheProjectDecide) {
  auto r = request_of({checked_file(0, "a.csv", Outcome::kPass)});
  auto outsider = decide(r, 0, {"olga", true, false}, Verdict::kApprove, "", 1);
  ASSERT_FALSE(outsider);
  EXPECT_EQ(outsider.error().code, Errc::kPermission);
  EXPECT_THAT(outsider.error().message, HasSubstr("not a member of project P-1"));
  auto analyst = decide(r, 0, {"bob", false, true}, Verdict::kApprove, "", 1);
  EXPECT_THAT(analyst.error().message, HasSubstr("bob is not a data steward"));
}

TEST(Review, ATierOfTwoNeedsTwoDifferentStewards) {
  auto r = request_of({checked_file(0, "a.csv", Outcome::kPass)}, 2);
  ASSERT_TRUE(decide(r, 0, kSteve, Verdict::kApprove, "", 1));
  EXPECT_EQ(r.state, RequestState::kWaitingReview);
  auto again = decide(r, 0, kSteve, Verdict::kApprove, "", 2);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kConflict);
  EXPECT_THAT(again.error().message, HasSubstr("a second steward must decide"));
  ASSERT_TRUE(decide(r, 0, kSue, Verdict::kApprove, "", 3));
  EXPECT_EQ(r.state, RequestState::kApproved);
}

TEST(Review, OneRejectionRejectsTheFileAndNeedsAComment) {
  auto r = request_of(
      {checked_file(0, "a.csv", Outcome::kPass), checked_file(1, "b.png", Outcome::kReview)}, 2);
  EXPECT_EQ(decide(r, 1, kSteve, Verdict::kReject, "", 1).error().code, Errc::kInvalidArgument);
  ASSERT_TRUE(decide(r, 1, kSteve, Verdict::kReject, "the image shows a patient's face", 1));
  EXPECT_EQ(r.files[1].status(2), FileStatus::kRejected);
  auto late = decide(r, 1, kSue, Verdict::kApprove, "", 2);
  ASSERT_FALSE(late);
  EXPECT_THAT(late.error().message, HasSubstr("is rejected: decided already"));
  ASSERT_TRUE(decide(r, 0, kSteve, Verdict::kApprove, "", 3));
  ASSERT_TRUE(decide(r, 0, kSue, Verdict::kApprove, "", 4));
  EXPECT_EQ(r.state, RequestState::kApproved);  // one of two files goes out
}

TEST(Review, EveryFileRejectedRejectsTheRequestAndClosesIt) {
  auto r = request_of({checked_file(0, "a.csv", Outcome::kPass)});
  ASSERT_TRUE(decide(r, 0, kSteve, Verdict::kReject, "not needed for the paper", 1));
  EXPECT_EQ(r.state, RequestState::kRejected);
  auto second = decide(r, 0, kSue, Verdict::kApprove, "", 2);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::kConflict);
  EXPECT_THAT(second.error().message, HasSubstr("R-7 is rejected: it takes no further action"));
  EXPECT_EQ(withdraw(r, std::nullopt, 3).error().code, Errc::kConflict);
}

TEST(Review, WithdrawingFilesOrTheRequest) {
  auto r = request_of(
      {checked_file(0, "a.csv", Outcome::kPass), checked_file(1, "b.csv", Outcome::kFail)});
  EXPECT_EQ(r.state, RequestState::kNeedsAnalyst);
  ASSERT_TRUE(withdraw(r, 1u, 1));
  EXPECT_EQ(r.state, RequestState::kWaitingReview);
  EXPECT_EQ(withdraw(r, 1u, 2).error().code, Errc::kConflict);
  ASSERT_TRUE(decide(r, 0, kSteve, Verdict::kApprove, "", 3));
  EXPECT_EQ(r.state, RequestState::kApproved);
  EXPECT_THAT(withdraw(r, std::nullopt, 4).error().message, HasSubstr("being released"));

  auto all = request_of({checked_file(0, "a.csv", Outcome::kPass)});
  ASSERT_TRUE(withdraw(all, 0u, 1));
  EXPECT_EQ(all.state, RequestState::kWithdrawn);
  auto whole = request_of({checked_file(0, "a.csv", Outcome::kPass)});
  ASSERT_TRUE(withdraw(whole, std::nullopt, 1));
  EXPECT_EQ(whole.state, RequestState::kWithdrawn);
  EXPECT_EQ(whole.state_reason, "withdrawn by the requester");
}

TEST(Review, AFileStillBeingCheckedHoldsTheRequest) {
  ExportFile unchecked;
  unchecked.index = 1;
  unchecked.name = "big.csv";
  auto r = request_of({checked_file(0, "a.csv", Outcome::kPass), unchecked});
  EXPECT_EQ(r.state, RequestState::kChecking);
  EXPECT_THAT(accept_safe_version(r, 1, 1).error().message, HasSubstr("still being checked"));
}

TEST(Review, NamesAndLabelsRoundTrip) {
  for (auto s : {RequestState::kChecking, RequestState::kNeedsAnalyst, RequestState::kWaitingReview,
                 RequestState::kApproved, RequestState::kRejected, RequestState::kReleased,
                 RequestState::kWithdrawn, RequestState::kFailed}) {
    EXPECT_EQ(request_state_from_name(request_state_name(s)), s);
  }
  EXPECT_EQ(parse_request_label("R-42"), 42);
  EXPECT_EQ(parse_request_label("42"), 42);
  EXPECT_EQ(parse_request_label("R-0"), std::nullopt);
  EXPECT_EQ(parse_request_label("R-4x"), std::nullopt);
  EXPECT_EQ(request_label(42), "R-42");
}

}  // namespace
}  // namespace enclave::exitcontrol::review

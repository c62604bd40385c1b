// Progress bars drawn with fmt on stderr, throttled so that drawing never costs measurable time.
#include "cli/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli/common.hpp"

namespace nfcal::cli {
namespace {

constexpr int kBarWidth = 30;
constexpr auto kMinRedraw = std::chrono::milliseconds(100);

// "1m05s" or "12s": elapsed and remaining times at a glance.
std::string short_duration(double seconds) {
  const long total = static_cast<long>(seconds + 0.5);
  if (total >= 60) return fmt::format("{}m{:02d}s", total / 60, static_cast<int>(total % 60));
  return fmt::format("{}s", total);
}

}  // namespace

bool progress_bars_enabled() {
  return ::isatty(STDERR_FILENO) == 1 && spdlog::should_log(spdlog::level::info);
}

ProgressBar::ProgressBar(std::string label, std::size_t total)
    : label_(std::move(label)),
      total_(std::max<std::size_t>(total, 1)),
      enabled_(progress_bars_enabled()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - kMinRedraw) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(std::size_t done, const std::string& status) {
  if (!enabled_ || finished_) return;

  // Redraw at most every kMinRedraw, except for the last step, which is always shown.
  const auto now = std::chrono::steady_clock::now();
  done = std::min(done, total_);
  if (done < total_ && now - last_draw_ < kMinRedraw) return;
  last_draw_ = now;

  // The bar, the count, elapsed and estimated remaining time, and the caller's status.
  const double fraction = static_cast<double>(done) / static_cast<double>(total_);
  const int filled = static_cast<int>(fraction * kBarWidth);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double remaining = done > 0 ? elapsed * (1.0 - fraction) / fraction : 0.0;
  const std::string line = fmt::format(
      "\r{} [{}{}] {}/{} {} <{} {}", label_, std::string(static_cast<std::size_t>(filled), '#'),
      std::string(static_cast<std::size_t>(kBarWidth - filled), '.'), done, total_,
      short_duration(elapsed), short_duration(remaining), status);
  std::fputs(fmt::format("{}\x1b[K", line).c_str(), stderr);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  std::fputs("\n", stderr);
  std::fflush(stderr);
}

EpochCallback training_progress(ProgressBar* bar) {
  const EpochCallback log_line = epoch_logger();
  return [bar, log_line](const EpochReport& report) {
    if (!bar->enabled()) {
      log_line(report);
      return;
    }
    bar->update(static_cast<std::size_t>(report.epoch),
                fmt::format("train {:.3f} valid {:.3f}", report.train_log_likelihood,
                            report.validation_log_likelihood));
  };
}

RoundCallback classifier_progress(ProgressBar* bar) {
  return [bar](const BoostingRound& r) {
    if (!bar->enabled()) {
      if (r.refit) {
        spdlog::debug("classifier refit round {}/{}", r.rounds, r.rounds_at_most);
      } else {
        spdlog::debug("classifier round {}/{}: held-out gain {:.5f}", r.rounds, r.rounds_at_most,
                      r.score);
      }
      return;
    }
    bar->set_total(static_cast<std::size_t>(r.rounds_at_most));
    bar->update(static_cast<std::size_t>(r.rounds),
                r.refit ? std::string("refit on all rows") : fmt::format("gain {:.4f}", r.score));
  };
}

std::function<void(std::size_t, std::size_t)> sampling_progress(ProgressBar* bar) {
  return [bar](std::size_t accepted, std::size_t requested) {
    if (!bar->enabled()) {
      spdlog::debug("sampling: {} of {} accepted", accepted, requested);
      return;
    }
    bar->update(accepted);
  };
}

}  // namespace nfcal::cli

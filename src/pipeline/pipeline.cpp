// The prepare-bench driver (see pipeline.h): plan, resume state, children, records.
#include "pipeline/pipeline.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <deque>
#include <fstream>
#include <iomanip>
#include <map>
#include <memory>
#include <ostream>
#include <regex>
#include <set>
#include <sstream>
#include <system_error>

#include "io/progress.h"
#include "pipeline/case_store.h"
#include "pipeline/child_process.h"
#include "pipeline/run_record.h"
#include "slidesparse/build_info.h"
#include "slidesparse/error.h"
#include "slidesparse/tuning/tuning_lookup.h"

namespace slidesparse::pipeline {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// ---- signals: SIGINT / SIGTERM end the current child and leave the run resumable -------------

volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_stop_signal(int sig) { g_signal = sig; }

class SignalGuard {
 public:
  SignalGuard() {
    g_signal = 0;
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~SignalGuard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// ---- the log: every line of the pipeline and of its children --------------------------------

class RunLog {
 public:
  explicit RunLog(const fs::path& file) {
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    out_.open(file, std::ios::app);
    SS_REQUIRE(out_, "prepare-bench: cannot open the log " << file);
  }
  void line(const std::string& text) {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char stamp[16];
    std::strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
    out_ << stamp << " " << text << "\n";
    out_.flush();
  }

 private:
  std::ofstream out_;  // appended to: one log across the calls of a run (not rewritten whole)
};

std::string join(const std::vector<int64_t>& ms) {
  std::string out;
  for (int64_t m : ms) {
    if (!out.empty()) out += ',';
    out += std::to_string(m);
  }
  return out;
}

std::string seconds_text(double s) { return ProgressBar::format_seconds(s); }

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

bool covers(const json& have, const json& want) {
  if (!have.is_object()) return false;
  for (const char* key : {"models", "dtypes", "sparsities"}) {
    const json& h = have.value(key, json::array());
    for (const json& item : want.value(key, json::array()))
      if (std::find(h.begin(), h.end(), item) == h.end()) return false;
  }
  return have.value("fast_accum", false) || !want.value("fast_accum", false);
}

// A file's identity, to tell a case JSON the child wrote from the one that was there before.
struct FileStamp {
  bool exists = false;
  ino_t inode = 0;
  int64_t mtime_ns = 0;
  int64_t size = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp stamp_of(const fs::path& file) {
  struct stat st {};
  FileStamp s;
  if (::stat(file.c_str(), &st) != 0) return s;
  s.exists = true;
  s.inode = st.st_ino;
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  s.size = st.st_size;
  return s;
}

std::string read_trimmed(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// How a child's run ended, as the pipeline saw it.
enum class ChildEnd { kExited, kCaseTimeout, kGroupTimeout, kBudget, kSignal, kSilent };

class Pipeline {
 public:
  Pipeline(const PipelineOptions& options, std::ostream& out) : o_(options), out_(out) {}
  PipelineResult run();

 private:
  // setup
  void print_plan();
  PipelineResult run_without_gpu();
  void open_record();
  void merge_staged_leftovers();
  // tasks
  void run_tune_task(const TuneTask& task);
  void run_group(const BenchGroup& group);
  void write_pipeline_skips(const BenchGroup& group);
  // records
  void refresh_bench_task(int task);
  void save_record();
  std::string output_display(const fs::path& file) const;
  // helpers
  fs::path staging_dir(const BenchGroup& g) const {
    return o_.results_dir / ".staging" / g.json_dir().lexically_relative(o_.results_dir);
  }
  bool stop_requested() {
    if (g_signal != 0) interrupted_by_ = g_signal;
    if (interrupted_by_ != 0) return true;
    if (budget_end_ && Clock::now() >= *budget_end_) stopped_at_budget_ = true;
    return stopped_at_budget_;
  }
  std::vector<std::pair<std::string, std::string>> child_env() const {
    if (o_.tuning_dir.empty()) return {};
    return {{"SLIDESPARSE_TUNING_DIR", o_.tuning_dir.string()}};
  }
  std::string rerun_command(const std::vector<std::string>& argv) const {
    std::string prefix;
    for (const auto& [key, value] : child_env()) prefix += key + "=" + shell_join({value}) + " ";
    return prefix + shell_join(argv);
  }
  void say(const std::string& text) {
    log_->line(text);
    if (progress_) progress_->clear();
    out_ << text << "\n";
    out_.flush();
    if (progress_ && !progress_label_.empty()) progress_->begin(progress_label_);
  }
  void progress_begin(const std::string& label) {
    progress_label_ = label;
    if (progress_) progress_->begin(label);
  }
  std::string case_line(const BenchGroup& g, int64_t m, const StoredCase& c) const;
  // Whether this call leaves the case as it is: ok or skipped for this hardware, unless --force,
  // or --rerun-other-builds and another build measured it.
  bool done(const StoredCase& c) const;
  // An ok case whose JSON names another build than this one (or none).
  bool of_other_build(const StoredCase& c) const { return c.status == "ok" && c.build != build_; }

  const PipelineOptions& o_;
  std::ostream& out_;
  const std::string build_ = build_info().id();
  RunHardware hw_;
  Plan plan_;
  fs::path runner_;
  fs::path run_json_;
  std::unique_ptr<RunLog> log_;
  RunRecord record_;
  std::optional<RunRecord> previous_;  // the run before this one (a finished record), for tuning
  Clock::time_point started_ = Clock::now();
  std::optional<Clock::time_point> budget_end_;
  std::optional<Clock::time_point> child_deadline_;
  bool stopped_at_budget_ = false;
  int interrupted_by_ = 0;
  int children_ = 0;
  std::unique_ptr<ProgressBar> progress_;
  std::string progress_label_;
  // This call's time per task, added to the record's totals when saved.
  std::map<int, double> call_wall_s_, call_gpu_s_, base_wall_s_, base_gpu_s_;
  std::map<int, int64_t> call_cases_run_, base_cases_run_;
};

std::string Pipeline::output_display(const fs::path& file) const {
  // Relative to the working folder when inside it (the report looks there), else absolute.
  std::error_code ec;
  const fs::path absolute = fs::absolute(file, ec);
  const fs::path rel = absolute.lexically_normal().lexically_relative(fs::current_path(ec));
  if (!rel.empty() && *rel.begin() != "..") return rel.generic_string();
  return absolute.lexically_normal().generic_string();
}

bool Pipeline::done(const StoredCase& c) const {
  if (o_.force || !c.done_for(hw_.hardware_key)) return false;
  return !(o_.rerun_other_builds && of_other_build(c));
}

std::string Pipeline::case_line(const BenchGroup& g, int64_t m, const StoredCase& c) const {
  std::ostringstream os;
  os << g.label() << " M=" << m << ": ";
  if (!c.readable) {
    os << "unreadable (" << c.problem << ")";
    return os.str();
  }
  os << c.status;
  if (c.status == "ok") {
    const json metrics = c.doc.value("metrics", json(nullptr));
    if (metrics.is_object() && metrics.contains("tokens_per_s") &&
        metrics["tokens_per_s"].is_number())
      os << ", " << std::fixed << std::setprecision(0) << metrics["tokens_per_s"].get<double>()
         << " tok/s";
  } else if (c.status == "failed") {
    os << " (" << c.error_type << ": " << c.reason << ")";
  } else {
    os << " (" << c.reason << ")";
  }
  if (c.hardware_key != hw_.hardware_key)
    os << " [warning: written for hardware key '" << c.hardware_key << "', not " << hw_.hardware_key
       << "]";
  return os.str();
}

// ---- dry run ---------------------------------------------------------------------------------

void Pipeline::print_plan() {
  const bool have_hw = !hw_.hardware_key.empty();
  out_ << "prepare-bench: dry run (nothing is run or written)\n";
  out_ << "hardware: "
       << (have_hw ? hw_.gpu_name + ", cc " + hw_.cc_text() + ", key " + hw_.hardware_key
                   : std::string("no GPU here: folders read GPU_ccXX, nothing counts as done"))
       << "\n";
  out_ << "results: " << o_.results_dir.string() << "   runner: " << runner_.string() << "\n";
  out_ << "case timeout: " << o_.case_timeout_s << " s";
  if (o_.time_budget_s) out_ << "   time budget: " << *o_.time_budget_s << " s";
  out_ << "\n";
  const fs::path tuning_root = o_.tuning_dir.empty() ? default_tuning_dir() : o_.tuning_dir;
  for (const TuneTask& t : plan_.tune_tasks) {
    out_ << "task " << t.task << " " << task_name(t.task) << ": ";
    if (!t.skip_reason.empty()) {
      out_ << "skipped: " << t.skip_reason << "\n";
      continue;
    }
    out_ << "tables under " << tuning_root.string() << "/<hardware key>/\n    $ "
         << shell_join(tune_argv(runner_, t, o_.tuning_dir)) << "\n";
  }
  int64_t to_run_total = 0, children_total = 0;
  for (int task : plan_.tasks) {
    if (task < 5) continue;
    int64_t cases = 0, done = 0, skip = 0, to_run = 0, groups = 0;
    std::ostringstream detail;
    for (const BenchGroup& g : plan_.groups) {
      if (g.task != task) continue;
      ++groups;
      std::vector<int64_t> todo;
      for (int64_t m : g.ms) {
        ++cases;
        const bool is_done = have_hw && this->done(read_case(g.json_dir() / g.case_file(m)));
        if (is_done)
          ++done;
        else
          todo.push_back(m);
      }
      detail << "  " << g.label() << ": M " << join(g.ms);
      if (!g.skip_reason.empty()) {
        skip += static_cast<int64_t>(todo.size());
        detail << "  skipped by the pipeline (" << g.skip_reason << ")\n";
        continue;
      }
      to_run += static_cast<int64_t>(todo.size());
      if (todo.empty()) {
        detail << "  all done\n";
        continue;
      }
      ++children_total;
      detail << "  to run: " << join(todo) << " -> " << g.json_dir().string() << "\n    $ "
             << rerun_command(
                    bench_argv(runner_, g, todo, g.json_dir(), staging_dir(g) / ".case-marker"))
             << "\n";
    }
    to_run_total += to_run;
    out_ << "task " << task << " " << task_name(task) << ": " << groups << " groups, " << cases
         << " cases (" << done << " done, " << skip << " skipped by the pipeline, " << to_run
         << " to run)\n"
         << detail.str();
  }
  out_ << "total: " << to_run_total << " cases to run in at least " << children_total
       << " child processes\n";
}

// ---- without a GPU ---------------------------------------------------------------------------

PipelineResult Pipeline::run_without_gpu() {
  const std::string reason =
      "no GPU: no usable CUDA device or driver; tuning and benchmarks need one";
  log_->line("no GPU: nothing runs");
  std::optional<RunRecord> existing = load_run_record(run_json_);
  if (existing) {
    // Another machine's (resumable) record: keep its tasks, only say that this call ran nothing.
    record_ = *existing;
    record_.add_note("no GPU in the call of " + utc_now_text() + ": nothing ran");
  } else {
    record_.started_at = utc_now_text();
    record_.gpu = nullptr;
    for (int task : plan_.tasks) {
      TaskRecord& t = record_.task(task);
      t.status = "not_run";
      t.note = reason;
    }
    record_.add_note(reason);
  }
  save_run_record(run_json_, record_);
  say("prepare-bench: " + reason + "; every task recorded not_run in " + run_json_.string());
  PipelineResult r;
  r.exit_code = kExitNoGpu;
  r.gpu = false;
  r.run_json = run_json_;
  return r;
}

// ---- run.json --------------------------------------------------------------------------------

void Pipeline::open_record() {
  std::optional<RunRecord> existing = load_run_record(run_json_);
  const bool resume =
      existing && !existing->finished_at && existing->hardware_key == hw_.hardware_key;
  if (resume) {
    record_ = *existing;
    log_->line("resuming the run started " + record_.started_at + " (call " +
               std::to_string(record_.calls + 1) + ")");
  } else {
    if (existing) {
      if (existing->hardware_key != hw_.hardware_key) {
        // Keep the other machine's record beside the logs (not as .json: the report reads one run).
        const fs::path backup =
            o_.results_dir / "logs" /
            ("run-" + existing->hardware_key + "-" + existing->started_at + ".json.bak");
        std::error_code ec;
        fs::copy_file(run_json_, backup, fs::copy_options::overwrite_existing, ec);
        log_->line("run.json was for hardware key " + existing->hardware_key + ": kept as " +
                   backup.string() + "; a new run starts");
      } else {
        log_->line("the run of " + existing->started_at + " finished at " +
                   existing->finished_at.value_or("?") +
                   "; a new run starts (done cases are reused)");
        previous_ = existing;
      }
    }
    record_ = RunRecord{};
    record_.started_at = utc_now_text();
  }
  record_.calls += 1;
  record_.finished_at.reset();
  record_.hardware_key = hw_.hardware_key;
  record_.gpu = {{"name", hw_.gpu_name}, {"cc", hw_.cc_text()}, {"driver", hw_.driver}};
  std::string cuda = hw_.versions.toolchain();
  if (cuda.rfind("cuda", 0) == 0) cuda = cuda.substr(4);
  record_.versions = {{"cuda", cuda},
                      {"cuda_runtime", hw_.versions.cuda_runtime},
                      {"cuda_driver_api", hw_.versions.cuda_driver},
                      {"cublaslt", hw_.versions.cublaslt},
                      {"cusparselt", hw_.versions.cusparselt},
                      {"driver", hw_.driver}};
  json call_options = {
      {"models", o_.models},
      {"dtypes", o_.dtypes},
      {"backends", o_.backends},
      {"tasks", plan_.tasks},
      {"prefill_M", o_.prefill_m},
      {"decode_M", o_.decode_m},
      {"case_timeout_s", o_.case_timeout_s},
      {"time_budget_s", o_.time_budget_s ? json(*o_.time_budget_s) : json(nullptr)},
      {"force", o_.force},
      {"rerun_other_builds", o_.rerun_other_builds},
      {"runner", runner_.string()}};
  record_.add_plan(call_options);  // before options is replaced: an old record keeps its matrix
  if (!record_.builds.empty() &&
      std::find(record_.builds.begin(), record_.builds.end(), build_) == record_.builds.end()) {
    std::string earlier;
    for (const std::string& b : record_.builds) earlier += (earlier.empty() ? "" : ", ") + b;
    say("warning: this build (" + build_ + ") is not the one that measured the run's earlier " +
        "cases (" + earlier + "); they are kept as done unless --rerun-other-builds, and the " +
        "report lists the builds");
  }
  record_.add_build(build_);
  record_.options = std::move(call_options);
  // Notes of an earlier call that may no longer hold; this call adds them again if they do.
  for (const char* prefix : {"stopped at the time budget", "interrupted", "no GPU"})
    record_.drop_notes(prefix);
  const bool benchmarks =
      std::any_of(plan_.tasks.begin(), plan_.tasks.end(), [](int t) { return t >= 5; });
  const bool fp8 = std::find(o_.dtypes.begin(), o_.dtypes.end(), "fp8") != o_.dtypes.end();
  if (fp8 && !hw_.supports_fp8()) {
    record_.add_note(hw_.fp8_note());
    say("warning: " + hw_.fp8_note() + (benchmarks ? "; fp8 is left out of tuning" : ""));
  }
  for (const BenchGroup& g : plan_.groups)
    if (!g.skip_reason.empty()) {
      record_.add_note(g.skip_reason + ": those cases are recorded skipped without running");
      break;
    }
  for (int task : plan_.tasks) {
    TaskRecord& t = record_.task(task);
    base_wall_s_[task] = t.wall_s;
    base_gpu_s_[task] = t.gpu_s;
    base_cases_run_[task] = t.cases_run;
  }
}

void Pipeline::save_record() {
  for (int task : plan_.tasks) {
    TaskRecord& t = record_.task(task);
    t.wall_s = base_wall_s_[task] + call_wall_s_[task];
    t.gpu_s = base_gpu_s_[task] + call_gpu_s_[task];
    t.cases_run = base_cases_run_[task] + call_cases_run_[task];
  }
  save_run_record(run_json_, record_);
}

void Pipeline::refresh_bench_task(int task) {
  TaskRecord& t = record_.task(task);
  int64_t ok = 0, failed = 0, skipped = 0, missing = 0;
  std::map<std::string, int64_t> failure_types, skip_reasons;
  for (const BenchGroup& g : plan_.groups) {
    if (g.task != task) continue;
    for (int64_t m : g.ms) {
      const StoredCase c = read_case(g.json_dir() / g.case_file(m));
      if (!c.readable || c.hardware_key != hw_.hardware_key) {
        ++missing;
      } else if (c.status == "ok") {
        ++ok;
      } else if (c.status == "skipped") {
        ++skipped;
        ++skip_reasons[c.reason];
      } else {
        ++failed;
        ++failure_types[c.error_type.empty() ? "Error" : c.error_type];
      }
    }
  }
  t.ok = ok;
  t.failed = failed;
  t.skipped = skipped;
  const int64_t total = ok + failed + skipped + missing;
  const int64_t run_so_far = base_cases_run_[task] + call_cases_run_[task];
  std::ostringstream note;
  if (missing > 0) {
    t.status = "not_run";
    note << missing << " of " << total << " cases not run yet";
    if (stopped_at_budget_) note << ": stopped at the time budget; rerun to resume";
    if (interrupted_by_ != 0) note << ": interrupted; rerun to resume";
  } else if (failed > 0) {
    t.status = ok > 0 ? "partly_failed" : "failed";
    note << failed << (failed == 1 ? " case" : " cases") << " failed (";
    bool first = true;
    for (const auto& [type, n] : failure_types) {
      note << (first ? "" : ", ") << n << " " << type;
      first = false;
    }
    note << ")";
  } else if (ok == 0 && skipped > 0) {
    t.status = "skipped";
    note << "all " << skipped << " cases skipped";
  } else if (run_so_far == 0) {
    t.status = "skipped";
    note << "all outputs exist (" << ok << " ok, " << skipped << " skipped)";
  } else {
    t.status = "succeeded";
    note << ok << " ok, " << skipped << " skipped";
  }
  if (missing == 0 && skipped > 0 && !skip_reasons.empty()) {
    note << "; skipped:";
    for (const auto& [reason, n] : skip_reasons) note << " " << n << " x " << reason << ";";
  }
  t.note = note.str();
  if (!t.note.empty() && t.note.back() == ';') t.note.pop_back();
}

// ---- leftovers of an interrupted call --------------------------------------------------------

void Pipeline::merge_staged_leftovers() {
  const fs::path root = o_.results_dir / ".staging";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return;
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec))
    if (it->is_regular_file(ec)) files.push_back(it->path());
  for (const fs::path& file : files) {
    const std::string name = file.filename().string();
    if (name == ".case-marker") {
      fs::remove(file, ec);
      continue;
    }
    if (file.extension() != ".json") continue;
    const StoredCase c = read_case(file);
    if (!c.readable) continue;  // a temporary file of a killed child, or not a case: left alone
    const fs::path target = o_.results_dir / file.parent_path().lexically_relative(root);
    const fs::path written = store_case(target, name, c.doc);
    fs::remove(file, ec);
    log_->line("merged " + file.string() + " (left by an interrupted call) into " +
               written.string());
  }
}

// ---- tuning (tasks 3 and 4) ------------------------------------------------------------------

void Pipeline::run_tune_task(const TuneTask& task) {
  TaskRecord& rec = record_.task(task.task);
  const fs::path tuning_root = o_.tuning_dir.empty() ? default_tuning_dir() : o_.tuning_dir;
  const fs::path table_dir = tuning_root / hw_.hardware_key;
  rec.outputs.clear();
  bool outputs_exist = true;
  for (const std::string& name : task.output_files()) {
    rec.outputs.push_back(output_display(table_dir / name));
    std::error_code ec;
    if (!fs::is_regular_file(table_dir / name, ec)) outputs_exist = false;
  }
  if (!task.skip_reason.empty()) {
    rec.status = "skipped";
    rec.note = task.skip_reason;
    say("task " + std::to_string(task.task) + " " + task_name(task.task) + ": skipped (" +
        task.skip_reason + ")");
    save_record();
    return;
  }
  const json covered = {{"models", task.models},
                        {"dtypes", task.dtypes},
                        {"sparsities", task.sparsities},
                        {"fast_accum", task.fast_accum}};
  // Done by this run or by the one before for at least these models and precisions, and the
  // tables are there: no child (the tuner would only find every entry done).
  for (const RunRecord* r : {&record_, previous_ ? &*previous_ : nullptr}) {
    if (r == nullptr) continue;
    const TaskRecord* before = r->find_task(task.task);
    if (before && (before->status == "succeeded" || before->status == "skipped") &&
        covers(before->covered, covered) && outputs_exist) {
      if (r == &record_ && before->status == "succeeded") {
        // An earlier call of this run did the work: its record (counts, time, note) stands.
        say("task " + std::to_string(task.task) + " " + task_name(task.task) +
            ": done in an earlier call of this run");
        save_record();
        return;
      }
      rec.status = "skipped";
      rec.note = "all outputs exist";
      rec.covered = before->covered;
      say("task " + std::to_string(task.task) + " " + task_name(task.task) +
          ": skipped (all outputs exist)");
      save_record();
      return;
    }
  }
  if (stop_requested()) {
    rec.status = "not_run";
    rec.note = stopped_at_budget_ ? "not started: stopped at the time budget; rerun to resume"
                                  : "not started: interrupted; rerun to resume";
    save_record();
    return;
  }
  const std::vector<std::string> argv = tune_argv(runner_, task, o_.tuning_dir);
  say("task " + std::to_string(task.task) + " " + task_name(task.task) + ": " + shell_join(argv));
  const auto child_started = Clock::now();
  auto last_output = child_started;
  ChildProcess child(argv, {});
  ++children_;
  log_->line("child " + std::to_string(child.pid()) + " started");
  ChildEnd end = ChildEnd::kExited;
  std::vector<std::string> lines;
  std::deque<std::string> tail;
  std::optional<std::array<int64_t, 3>> summary;  // run, done before, failed
  static const std::regex summary_re(
      R"(summary: (\d+) jobs run, (\d+) done before \(skipped\), (\d+) failed)");
  auto take = [&](std::vector<std::string>& got) {
    for (const std::string& line : got) {
      log_->line("  | " + line);
      std::smatch m;
      if (std::regex_search(line, m, summary_re))
        summary = std::array<int64_t, 3>{std::stoll(m[1]), std::stoll(m[2]), std::stoll(m[3])};
      if (line.rfind("[tune]", 0) == 0 || line.rfind("summary:", 0) == 0) {
        if (progress_) progress_->clear();
        std::fprintf(stderr, "%s\n", line.c_str());
      }
      if (!line.empty()) {
        tail.push_back(line);
        if (tail.size() > 3) tail.pop_front();
      }
    }
    if (!got.empty()) last_output = Clock::now();
    got.clear();
  };
  while (child.poll(250, lines)) {
    take(lines);
    if (g_signal != 0) {
      interrupted_by_ = g_signal;
      end = ChildEnd::kSignal;
    } else if (child_deadline_ && Clock::now() >= *child_deadline_) {
      stopped_at_budget_ = true;
      end = ChildEnd::kBudget;
    } else if (seconds_since(last_output) > o_.case_timeout_s) {
      end = ChildEnd::kSilent;  // the tuner prints a line per job: silence means a hang
    } else {
      continue;
    }
    child.kill_group();
    break;
  }
  const ExitStatus status = child.wait(lines);
  take(lines);
  const double wall = seconds_since(child_started);
  call_gpu_s_[task.task] += wall;
  call_cases_run_[task.task] += 1;
  log_->line("child " + std::to_string(child.pid()) + " ended: " + status.describe() + " after " +
             seconds_text(wall));
  std::string last;
  for (const std::string& l : tail) {
    if (!last.empty()) last += " | ";
    last += l;
  }
  rec.covered = nullptr;
  if (end == ChildEnd::kBudget || end == ChildEnd::kSignal) {
    rec.status = "not_run";
    rec.note =
        std::string(end == ChildEnd::kBudget ? "stopped at the time budget" : "interrupted") +
        " while tuning; rerun to resume (the tuner keeps what it saved)";
  } else if (end == ChildEnd::kSilent) {
    rec.status = "failed";
    rec.note = "the tuner printed nothing for " + seconds_text(o_.case_timeout_s) + "; killed";
  } else if (!status.exit_code || *status.exit_code != 0) {
    rec.status = "failed";
    rec.note = "the tuner ended with " + status.describe() + (last.empty() ? "" : ": " + last);
  } else if (!summary) {
    rec.status = "succeeded";
    rec.note = "the tuner ended with exit code 0 (no summary line)";
    rec.covered = covered;
  } else {
    const auto [jobs_run, done_before, failures] = *summary;
    rec.ok = std::max<int64_t>(0, jobs_run - failures);
    rec.failed = failures;
    rec.skipped = done_before;
    std::ostringstream note;
    note << jobs_run << " jobs tuned, " << done_before << " done before, " << failures
         << " failed (" << task.models.size() << " models)";
    if (failures > 0) {
      rec.status = rec.ok > 0 ? "partly_failed" : "failed";
    } else if (jobs_run == 0 && outputs_exist) {
      rec.status = "skipped";
      note.str("");
      note << "all outputs exist";
      rec.covered = covered;
    } else {
      rec.status = "succeeded";
      rec.covered = covered;
    }
    rec.note = note.str();
  }
  say("task " + std::to_string(task.task) + " " + task_name(task.task) + ": " + rec.status + " (" +
      rec.note + ")");
  save_record();
}

// ---- benchmarks (tasks 5, 6, 7) --------------------------------------------------------------

void Pipeline::write_pipeline_skips(const BenchGroup& g) {
  for (int64_t m : g.ms) {
    const fs::path file = g.json_dir() / g.case_file(m);
    if (read_case(file).done_for(hw_.hardware_key)) continue;
    CaseRecord r;
    r.group = &g;
    r.m = m;
    r.status = "skipped";
    r.skip_reason = g.skip_reason;
    r.command =
        rerun_command(bench_argv(runner_, g, {m}, g.json_dir(), staging_dir(g) / ".case-marker"));
    store_case(g.json_dir(), g.case_file(m), make_case_json(r, hw_));
    call_cases_run_[g.task] += 1;
    log_->line(g.label() + " M=" + std::to_string(m) + ": skipped (" + g.skip_reason + ")");
  }
}

void Pipeline::run_group(const BenchGroup& g) {
  if (!g.skip_reason.empty()) {
    write_pipeline_skips(g);
    rebuild_csv(g.folder, g.model, g.stage == "simple");
    return;
  }
  std::vector<int64_t> todo;
  for (int64_t m : g.ms)
    if (!done(read_case(g.json_dir() / g.case_file(m)))) todo.push_back(m);

  while (!todo.empty()) {
    if (stop_requested()) break;
    // A case with an ok JSON (forced, or of another key) runs into a staging folder, so that a
    // failing rerun lands beside the ok result and never over it.
    bool staged = false;
    for (int64_t m : todo) {
      const StoredCase c = read_case(g.json_dir() / g.case_file(m));
      if (c.readable && c.status == "ok") staged = true;
    }
    const fs::path dir = staged ? staging_dir(g) : g.json_dir();
    const fs::path marker = staging_dir(g) / ".case-marker";
    std::error_code ec;
    fs::create_directories(dir, ec);
    fs::create_directories(marker.parent_path(), ec);
    fs::create_directories(g.json_dir(), ec);
    fs::remove(marker, ec);
    // Temporary files of a child killed mid-write ("<case>.json.tmp-<pid>"): no process writes
    // here now, and the report would list them.
    for (const auto& entry : fs::directory_iterator(dir, ec))
      if (entry.path().filename().string().find(".json.tmp-") != std::string::npos)
        fs::remove(entry.path(), ec);
    std::map<int64_t, FileStamp> before;
    std::map<std::string, int64_t> m_of_file;
    for (int64_t m : todo) {
      before[m] = stamp_of(dir / g.case_file(m));
      m_of_file[g.case_file(m)] = m;
    }
    const std::vector<std::string> argv = bench_argv(runner_, g, todo, dir, marker);
    log_->line("start: " + rerun_command(argv));
    const auto child_started = Clock::now();
    ChildProcess child(argv, child_env());
    ++children_;
    log_->line("child " + std::to_string(child.pid()) + " started: " + g.label() + " M " +
               join(todo));

    std::set<int64_t> written;
    std::string current;  // the marker's case file name
    auto case_started = child_started;
    auto case_started_wall = std::chrono::system_clock::now();
    std::deque<std::string> tail;
    std::vector<std::string> lines;
    auto take_lines = [&]() {
      for (const std::string& line : lines) {
        log_->line("  | " + line);
        if (!line.empty()) {
          tail.push_back(line);
          if (tail.size() > 3) tail.pop_front();
        }
      }
      lines.clear();
    };
    auto scan = [&]() {
      for (int64_t m : todo) {
        if (written.count(m)) continue;
        const fs::path file = dir / g.case_file(m);
        const FileStamp now = stamp_of(file);
        if (!now.exists || now == before[m]) continue;
        const StoredCase c = read_case(file);
        if (!c.readable) continue;  // not complete yet, or not a case: looked at again later
        written.insert(m);
        if (staged) {
          store_case(g.json_dir(), g.case_file(m), c.doc);
          fs::remove(file, ec);
        }
        call_cases_run_[g.task] += 1;
        if (progress_) progress_->finish(g.case_weight(m));
        say(case_line(g, m, c));
      }
      const std::string name = read_trimmed(marker);
      if (!name.empty() && name != current) {
        current = name;
        case_started = Clock::now();
        case_started_wall = std::chrono::system_clock::now();
        progress_begin(g.label() +
                       " M=" + (m_of_file.count(name) ? std::to_string(m_of_file[name]) : name));
      }
    };
    ChildEnd end = ChildEnd::kExited;
    const double group_limit = o_.case_timeout_s * static_cast<double>(todo.size());
    while (child.poll(200, lines)) {
      take_lines();
      scan();
      if (g_signal != 0) {
        interrupted_by_ = g_signal;
        end = ChildEnd::kSignal;
      } else if (seconds_since(case_started) > o_.case_timeout_s) {
        end = ChildEnd::kCaseTimeout;
      } else if (seconds_since(child_started) > group_limit) {
        end = ChildEnd::kGroupTimeout;
      } else if (child_deadline_ && Clock::now() >= *child_deadline_) {
        stopped_at_budget_ = true;
        end = ChildEnd::kBudget;
      } else {
        continue;
      }
      child.kill_group();
      break;
    }
    const ExitStatus status = child.wait(lines);
    take_lines();
    scan();
    const double wall = seconds_since(child_started);
    call_gpu_s_[g.task] += wall;
    log_->line("child " + std::to_string(child.pid()) + " ended: " + status.describe() + " after " +
               seconds_text(wall) +
               (end == ChildEnd::kExited   ? ""
                : end == ChildEnd::kBudget ? " (time budget)"
                : end == ChildEnd::kSignal ? " (interrupted)"
                                           : " (timed out)"));
    fs::remove(marker, ec);
    if (end == ChildEnd::kBudget || end == ChildEnd::kSignal) {
      // Not the case's fault: it runs again in the next call.
      if (!current.empty() && m_of_file.count(current) && !written.count(m_of_file[current]))
        log_->line(g.label() + " M=" + std::to_string(m_of_file[current]) +
                   ": stopped, not recorded; the next call runs it");
      break;
    }

    std::string last;
    for (const std::string& l : tail) {
      if (!last.empty()) last += " | ";
      last += l;
    }
    if (last.size() > 600) last = last.substr(last.size() - 600);
    const std::string last_text = last.empty() ? "" : "; last output: " + last;
    std::optional<int64_t> blamed;
    if (!current.empty() && m_of_file.count(current) && !written.count(m_of_file[current]))
      blamed = m_of_file[current];
    const bool timed_out = end == ChildEnd::kCaseTimeout || end == ChildEnd::kGroupTimeout;
    const bool normal_exit = status.exit_code && (*status.exit_code == kChildOk ||
                                                  *status.exit_code == kChildSomeFailed ||
                                                  *status.exit_code == kChildStickyFault);
    std::set<int64_t> recorded;
    auto record_failure = [&](int64_t m, const std::string& type, const std::string& message,
                              bool since_marker) {
      CaseRecord r;
      r.group = &g;
      r.m = m;
      r.status = "failed";
      r.error_type = type;
      r.message = message;
      r.command = rerun_command(bench_argv(runner_, g, {m}, dir, marker));
      const auto start_wall =
          since_marker ? case_started_wall
                       : std::chrono::system_clock::now() -
                             std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                 Clock::now() - child_started);
      const std::time_t t = std::chrono::system_clock::to_time_t(start_wall);
      std::tm tm{};
      gmtime_r(&t, &tm);
      char buffer[32];
      std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
      r.started_at = buffer;
      r.wall_s = since_marker ? seconds_since(case_started) : wall;
      r.exit_code = status.exit_code;
      r.signal = status.signal;
      store_case(g.json_dir(), g.case_file(m), make_case_json(r, hw_));
      recorded.insert(m);
      call_cases_run_[g.task] += 1;
      if (progress_) progress_->finish(g.case_weight(m));
      say(case_line(g, m, read_case(g.json_dir() / g.case_file(m))) +
          " [recorded by the pipeline]");
    };
    std::vector<int64_t> unwritten;
    for (int64_t m : todo)
      if (!written.count(m)) unwritten.push_back(m);
    if (timed_out) {
      const std::string limit = end == ChildEnd::kCaseTimeout
                                    ? "its " + seconds_text(o_.case_timeout_s) + " limit"
                                    : "the group's limit of " + seconds_text(group_limit) + " (" +
                                          std::to_string(todo.size()) + " cases x " +
                                          seconds_text(o_.case_timeout_s) + ")";
      if (blamed) {
        record_failure(*blamed, "Timeout",
                       "case exceeded " + limit + "; process group killed" + last_text, true);
      } else if (current.empty()) {
        for (int64_t m : unwritten)
          record_failure(m, "Timeout",
                         "the benchmark process did not start its first case within " + limit +
                             " (building the model?); process group killed; every M of the "
                             "child recorded" +
                             last_text,
                         false);
      }
    } else if (!normal_exit) {
      const std::string how = "the benchmark process ended with " + status.describe();
      if (blamed) {
        record_failure(*blamed, "Crash", how + " during this case" + last_text, true);
      } else if (current.empty()) {
        for (int64_t m : unwritten)
          record_failure(m, "Crash",
                         how +
                             " before its first case (building the model?); every M of the "
                             "child recorded" +
                             last_text,
                         false);
      }
    } else if (blamed) {
      record_failure(*blamed, "Error",
                     "the benchmark process ended with " + status.describe() +
                         " without recording this case" + last_text,
                     true);
    }
    std::vector<int64_t> remaining;
    for (int64_t m : unwritten)
      if (!recorded.count(m)) remaining.push_back(m);
    if (remaining.size() == todo.size()) {
      // No case came out of this child: another would do the same. Record them all.
      for (int64_t m : remaining)
        record_failure(m,
                       timed_out     ? "Timeout"
                       : normal_exit ? "Error"
                                     : "Crash",
                       "the benchmark process ended with " + status.describe() +
                           " without recording any case" + last_text,
                       false);
      remaining.clear();
    }
    if (!remaining.empty())
      log_->line(g.label() + ": " + std::to_string(remaining.size()) +
                 " cases left; a fresh child runs them");
    todo = std::move(remaining);
  }
  rebuild_csv(g.folder, g.model, g.stage == "simple");
}

// ---- the whole run ---------------------------------------------------------------------------

PipelineResult Pipeline::run() {
  validate_options(o_);
  std::optional<RunHardware> hardware = o_.hardware ? o_.hardware : query_run_hardware();
  if (hardware) hw_ = *hardware;
  plan_ = build_plan(o_, hardware);
  std::error_code ec;
  runner_ = o_.runner.empty() ? fs::read_symlink("/proc/self/exe", ec) : o_.runner;
  SS_REQUIRE(!runner_.empty(), "prepare-bench: cannot find this program (/proc/self/exe: "
                                   << ec.message() << "); pass --runner");
  if (o_.dry_run) {
    print_plan();
    PipelineResult r;
    r.gpu = hardware.has_value();
    return r;
  }
  SS_REQUIRE(fs::is_regular_file(runner_, ec),
             "prepare-bench: the runner " << runner_ << " is not a file");
  fs::create_directories(o_.results_dir / "logs", ec);
  SS_REQUIRE(!ec,
             "prepare-bench: cannot create " << (o_.results_dir / "logs") << ": " << ec.message());
  run_json_ = o_.results_dir / "run.json";
  log_ = std::make_unique<RunLog>(o_.results_dir / "logs" / "prepare-bench.log");
  {
    std::ostringstream os;
    os << "=== prepare-bench call " << utc_now_text() << ": models";
    for (const auto& m : o_.models) os << " " << m;
    os << "; dtypes";
    for (const auto& d : o_.dtypes) os << " " << d;
    os << "; backends";
    for (const auto& b : o_.backends) os << " " << b;
    os << "; tasks";
    for (int t : plan_.tasks) os << " " << t;
    os << "; runner " << runner_.string();
    if (o_.time_budget_s) os << "; time budget " << *o_.time_budget_s << " s";
    os << "; case timeout " << o_.case_timeout_s << " s";
    if (o_.force) os << "; --force";
    log_->line(os.str());
  }
  if (!hardware) return run_without_gpu();
  log_->line("hardware: " + hw_.gpu_name + ", cc " + hw_.cc_text() + ", driver " + hw_.driver +
             ", key " + hw_.hardware_key);

  SignalGuard signals;
  if (o_.time_budget_s) {
    budget_end_ = started_ + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(*o_.time_budget_s));
    // Children end by budget + one case timeout, less a little for the records and the report.
    const double margin = std::min(5.0, o_.case_timeout_s / 10.0);
    child_deadline_ = *budget_end_ + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(o_.case_timeout_s - margin));
  }
  open_record();
  merge_staged_leftovers();
  for (int task : plan_.tasks)
    if (task >= 5) refresh_bench_task(task);
  save_record();

  // The progress bar counts the benchmark cases this call has to run, weighted by expected cost.
  int todo_cases = 0;
  double todo_weight = 0;
  std::map<std::string, int64_t> kept_of_other_builds;  // done cases this build did not measure
  for (const BenchGroup& g : plan_.groups) {
    if (!g.skip_reason.empty()) continue;
    for (int64_t m : g.ms) {
      const StoredCase c = read_case(g.json_dir() / g.case_file(m));
      if (!done(c)) {
        ++todo_cases;
        todo_weight += g.case_weight(m);
      } else if (of_other_build(c)) {
        ++kept_of_other_builds[c.build];
      }
    }
  }
  say("prepare-bench: " + hw_.gpu_name + " (cc " + hw_.cc_text() + "), results in " +
      o_.results_dir.string() + "; " + std::to_string(todo_cases) + " benchmark cases to run");
  if (!kept_of_other_builds.empty()) {
    int64_t kept = 0;
    std::string which;
    for (const auto& [b, n] : kept_of_other_builds) {
      kept += n;
      which += (which.empty() ? "" : ", ") + (b.empty() ? std::string("not recorded") : b) + ": " +
               std::to_string(n);
    }
    say("warning: " + std::to_string(kept) + " ok cases kept as done were measured by another " +
        "build than this one (" + build_ + "; theirs: " + which + "); --rerun-other-builds " +
        "measures them again with this build");
  }

  for (const TuneTask& t : plan_.tune_tasks) {
    const auto task_started = Clock::now();
    run_tune_task(t);
    call_wall_s_[t.task] += seconds_since(task_started);
    save_record();
  }
  if (todo_cases > 0)
    progress_ = std::make_unique<ProgressBar>(todo_cases, todo_weight, "prepare-bench", "cases");
  for (int task : plan_.tasks) {
    if (task < 5) continue;
    const auto task_started = Clock::now();
    if (!stop_requested()) say("task " + std::to_string(task) + " " + task_name(task) + ": start");
    for (const BenchGroup& g : plan_.groups) {
      if (g.task != task) continue;
      if (stop_requested() && g.skip_reason.empty()) break;
      run_group(g);
      call_wall_s_[task] = seconds_since(task_started);
      refresh_bench_task(task);
      save_record();
    }
    // Groups not reached still get their CSVs rebuilt from what earlier calls stored.
    for (const BenchGroup& g : plan_.groups)
      if (g.task == task) rebuild_csv(g.folder, g.model, g.stage == "simple");
    call_wall_s_[task] = seconds_since(task_started);
    refresh_bench_task(task);
    const TaskRecord& rec = record_.task(task);
    say("task " + std::to_string(task) + " " + task_name(task) + ": " + rec.status + " (" +
        rec.note + ")");
    save_record();
  }
  if (progress_) {
    progress_->done();
    progress_.reset();
  }

  PipelineResult result;
  result.run_json = run_json_;
  result.children = children_;
  for (int task : plan_.tasks)
    if (task >= 5) refresh_bench_task(task);
  for (const BenchGroup& g : plan_.groups)
    for (int64_t m : g.ms) {
      const StoredCase c = read_case(g.json_dir() / g.case_file(m));
      if (!c.readable || c.hardware_key != hw_.hardware_key)
        ++result.missing;
      else if (c.status == "ok")
        ++result.ok;
      else if (c.status == "skipped")
        ++result.skipped;
      else
        ++result.failed;
    }
  bool any_task_failed = false, all_final = true;
  for (const TaskRecord& t : record_.tasks) {
    if (t.status == "not_run") all_final = false;
    if (t.status == "failed" || t.status == "partly_failed") any_task_failed = true;
  }
  stop_requested();
  if (interrupted_by_ != 0) {
    record_.add_note("interrupted by signal " + std::to_string(interrupted_by_) + " at " +
                     utc_now_text() + "; rerun prepare-bench to resume");
  } else if (stopped_at_budget_ && !all_final) {
    record_.add_note("stopped at the time budget (" + seconds_text(*o_.time_budget_s) +
                     "); rerun to resume");
  }
  result.finished = all_final && interrupted_by_ == 0;
  if (result.finished) record_.finished_at = utc_now_text();
  save_record();  // finish time written before the report is made
  result.stopped_at_budget = stopped_at_budget_ && !all_final;
  result.interrupted_by = interrupted_by_;
  if (interrupted_by_ != 0)
    result.exit_code = 128 + interrupted_by_;
  else if (!result.finished)
    result.exit_code = kExitResumable;
  else if (any_task_failed || result.failed > 0)
    result.exit_code = kExitFailures;
  std::ostringstream summary;
  summary << "prepare-bench: " << result.ok << " ok, " << result.failed << " failed, "
          << result.skipped << " skipped, " << result.missing << " not run; " << children_
          << " child processes in " << seconds_text(seconds_since(started_)) << "; "
          << (result.finished        ? "run finished"
              : interrupted_by_ != 0 ? "interrupted: rerun to resume"
                                     : "stopped at the time budget: rerun to resume");
  say(summary.str());
  return result;
}

}  // namespace

PipelineResult run_pipeline(const PipelineOptions& options, std::ostream& out) {
  Pipeline pipeline(options, out);
  return pipeline.run();
}

}  // namespace slidesparse::pipeline

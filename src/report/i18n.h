// Every sentence and heading of the report in English and Chinese. Placeholders {0}, {1}, ... are
// filled by fill(); numbers are formatted before they are filled in (number_format.h), so both
// languages write them the same way.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace slidesparse::report {

enum class Lang { kEnglish, kChinese };

// "en" | "zh"; anything else throws Error naming the accepted values.
Lang parse_lang(std::string_view text);
const char* lang_code(Lang lang);

struct Strings {
  const char* title;
  const char* contents;
  const char* generated_from;
  const char* partial_banner;
  const char* partial_missing_cases;
  const char* partial_tasks_not_run;
  const char* partial_no_run_json;
  const char* partial_unfinished;

  const char* sec_overview;
  const char* summary_cases;
  const char* summary_time;
  const char* summary_best;
  const char* headline_caption;
  const char* col_stage_m;
  const char* col_baseline;

  const char* sec_hardware;
  const char* col_item;
  const char* col_value;
  const char* hw_gpu;
  const char* hw_cc;
  const char* hw_driver;
  const char* hw_key;
  const char* hw_started;
  const char* hw_finished;
  const char* hw_unfinished;
  const char* hw_wall;
  const char* hw_gpu_time;
  const char* hw_other_keys;
  const char* hw_build;
  const char* build_not_recorded;
  const char* build_cases;
  const char* mixed_builds;

  const char* sec_tasks;
  const char* col_task;
  const char* col_status;
  const char* col_ok;
  const char* col_failed;
  const char* col_skipped;
  const char* col_wall;
  const char* col_gpu_time;
  const char* col_note;
  const char* task_skipped;
  const char* task_succeeded;
  const char* task_partly_failed;
  const char* task_failed;
  const char* task_not_run;
  const char* state_ok;
  const char* state_failed;
  const char* state_skipped;
  const char* state_missing;
  const char* total;
  const char* no_run_json;

  const char* sec_tuning;
  const char* col_path;
  const char* col_entries;
  const char* col_size;
  const char* tuning_not_found;
  const char* tuning_none;

  const char* stage_prefill;
  const char* stage_decode;
  const char* stage_simple;
  const char* sec_stage;
  const char* cfg_models;
  const char* cfg_ms;
  const char* cfg_backends;
  const char* cfg_dtypes;
  const char* cfg_timing;
  const char* cfg_shapes;
  const char* passes_caption;
  const char* col_backend;
  const char* cell_failed;
  const char* cell_skipped;
  const char* cell_missing;
  const char* grid_title;
  const char* grid_x;

  const char* sec_failures;
  const char* col_stage;
  const char* col_model;
  const char* col_dtype;
  const char* col_pattern;
  const char* col_error;
  const char* col_message;
  const char* col_command;
  const char* failures_none;
  const char* failures_count;
  const char* failures_rerun;

  const char* sec_missing;
  const char* missing_intro;
  const char* missing_none;
  const char* col_missing_ms;
  const char* tasks_not_run;

  const char* sec_notes;
  const char* note_skipped;
  const char* note_unreadable;
  const char* note_rerun;
  const char* notes_none;

  const char* sec_perf;
  const char* perf_intro;
  const char* tput_caption;
  const char* speedup_caption;
  const char* speedup_caption_one;
  const char* row_bound;
  const char* chart_tput_title;
  const char* chart_tput_y;
  const char* chart_x_prefill;
  const char* chart_x_decode;
  const char* chart_x_other;
  const char* chart_speedup_title;
  const char* sec_speedup_charts;
  const char* chart_speedup_y;
  const char* ref_bound;
  const char* ref_dense;
  const char* no_data;
  const char* faster_baseline;

  const char* sec_energy;
  const char* energy_intro;
  const char* energy_caption;
  const char* energy_saved;
  const char* energy_none;

  const char* sec_kernel;
  const char* kernel_intro;
  const char* kernel_caption;
  const char* kernel_none;
  const char* kernel_vs_prefill_caption;

  const char* sec_inventory;
  const char* col_folder;
  const char* col_case_jsons;
  const char* col_csvs;
  const char* col_others;
  const char* inventory_intro;
};

const Strings& strings(Lang lang);

// Replaces {0}, {1}, ... in `pattern` by the arguments.
std::string fill(std::string_view pattern, std::initializer_list<std::string> args);

}  // namespace slidesparse::report

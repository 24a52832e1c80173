# Independent reference implementation of the study's statistics (double programming, issue #14).
#
#   Rscript survival_check.R <study folder> <output folder> <subgroups csv>
#
# Written from R's own functions (survival::survfit, quantile.survfit, survdiff, coxph; stats::binom.test,
# fisher.test) and textbook formulas, reading only the record files described in data/README.md. It does
# not read the Python code's tables or share its code: agreement between the two is the evidence.
#
# Writes <output>/results.csv in long form (table, data_cut, endpoint, key, time, statistic, value; "NA"
# where a value is not estimable) and <output>/versions.csv (name, value).
# Base R and the recommended package survival only.

suppressPackageStartupMessages(library(survival))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3) stop("usage: Rscript survival_check.R <study folder> <output folder> <subgroups csv>")
study <- args[1]
out <- args[2]
# The study's declared comparisons (study.toml [[subgroups]]: factor, ADSL column, reference, level), as the caller
# writes them; how each ADSL column follows from the record files is derived here, independently of the Python.
declared <- read.csv(args[3], stringsAsFactors = FALSE, check.names = FALSE, na.strings = "")
dir.create(out, showWarnings = FALSE, recursive = TRUE)

read_records <- function(name) {
  path <- file.path(study, name)
  if (!file.exists(path)) stop(sprintf("%s: file not found", path))
  read.csv(path, stringsAsFactors = FALSE, check.names = FALSE, na.strings = "")
}

Z <- qnorm(0.975)
# coxph's default stops when the log-likelihood changes by less than 1e-9 of itself, which can leave beta ~1e-9
# short of the maximum; run to 1e-12 (and the Cholesky tolerance below it, as coxph.control asks), R reports the
# maximum itself, so a disagreement with our HR is a real one, not two stopping rules.
COX_CONTROL <- coxph.control(eps = 1e-12, toler.chol = 1e-14, iter.max = 100)
# quantile.survfit's own tolerance for "S(t) equals p", used for every comparison of S with a level below.
TOL <- sqrt(.Machine$double.eps)

rows <- list()
emit <- function(table, statistic, value, data_cut = "", endpoint = "", key = "", time = NA_real_) {
  value <- as.numeric(value)
  value[!is.finite(value)] <- NA
  rows[[length(rows) + 1]] <<- data.frame(
    table = table, data_cut = data_cut, endpoint = endpoint, key = key, time = time,
    statistic = statistic, value = value, stringsAsFactors = FALSE
  )
}
emit_all <- function(table, values, ...) {
  for (statistic in names(values)) emit(table, statistic, values[[statistic]], ...)
}

# The registry's key of a printed label: lower case, each run of other characters one "_", none at the ends.
slug <- function(text) gsub("^_+|_+$", "", gsub("[^a-z0-9]+", "_", tolower(text)))

# ---- Kaplan-Meier quantities read off survfit --------------------------------------------------------

km <- function(time, event) survfit(Surv(time, event) ~ 1, conf.type = "log-log")

# The first time at which S(t) <= 0.5: SPSS's median, and where lifelines' rule stops (no midpoint).
first_crossing <- function(fit) {
  hit <- which(fit$n.event > 0 & fit$surv <= 0.5 + TOL)
  if (length(hit)) fit$time[hit[1]] else NA
}

# SPSS 24 / Collett: SE(median) = Greenwood SE of S(median) / f, f = (S(u) - S(l)) / (l - u), where u is the
# last event time with S >= 0.55 and l the first event time with S <= 0.45; CI = median -/+ 1.96 SE.
spss_median <- function(fit) {
  events <- fit$n.event > 0
  time <- fit$time[events]
  surv <- fit$surv[events]
  se_surv <- (fit$surv * fit$std.err)[events]  # std.err is the SE of -log S: Greenwood's SE of S is S times it
  at <- which(surv <= 0.5 + TOL)
  median <- if (length(at)) time[at[1]] else NA
  u <- which(surv >= 0.55 - TOL)
  l <- which(surv <= 0.45 + TOL)
  se <- NA
  if (!is.na(median) && length(u) && length(l)) {
    u <- u[length(u)]
    l <- l[1]
    density <- (surv[u] - surv[l]) / (time[l] - time[u])
    se <- se_surv[at[1]] / density
  }
  c(median = median, se = se, ci_lower = median - Z * se, ci_upper = median + Z * se)
}

# R's own median, quantile.survfit's midpoint of a plateau at S = 0.5, with S rounded to 12 digits first:
# survival's findq opens with max(1 - S) < p, without its tolerance, so a plateau at exactly 0.5 that runs to the
# last observation and that the product's rounding leaves at 0.5 + 1e-16 reads as "never reaches 0.5" (NA),
# while the same plateau rounded the other way gets findq's own midpoint with the last time.
midpoint_median <- function(fit) {
  fit$surv <- round(fit$surv, 12)
  unname(quantile(fit, 0.5, conf.int = FALSE))
}

# R's own median (see midpoint_median); CI where the log(-log) band crosses, by quantile.survfit.
r_median <- function(fit) {
  q <- quantile(fit, 0.5)
  c(median_midpoint = midpoint_median(fit), ci_lower = unname(q$lower), ci_upper = unname(q$upper))
}

# ---- survival ---------------------------------------------------------------------------------------

patients <- read_records("patients.csv")
allocations <- read_records("patient_allocations.csv")
adsl <- merge(patients, allocations, by = "patient_id", all.x = TRUE)
response <- read_records("response.csv")
adverse <- read_records("adverse_events.csv")

cut_files <- sort(list.files(file.path(study, "followup"), pattern = "^\\d{4}-\\d{2}-\\d{2}\\.csv$"))
if (!length(cut_files)) stop(sprintf("%s: no follow-up cut files", file.path(study, "followup")))
endpoints <- list(PFS = c("pfs_months", "progressed"), OS = c("os_months", "died"))

# The ADSL variables a subgroup may split, from the patient rows (data/README.md defines each).
adsl_variable <- function(p, column) {
  switch(column,
    SEX = ifelse(p$sex == "Male", "M", ifelse(p$sex == "Female", "F", NA)),
    ECOGGR1 = ifelse(p$ecog >= 2, ">=2", "0-1"),
    COMBFL = ifelse(p$combination_therapy == "None", "N", "Y"),
    PRCHFL = ifelse(p$chemotherapy_history == "No", "N", "Y"),
    SURGFL = ifelse(p$surgery_history == "Yes", "Y", "N"),
    RADIOFL = ifelse(p$radiotherapy_history == "Yes", "Y", "N"),
    PRIMSITE = p$primary_site,
    stop(sprintf("subgroup column %s: no derivation from the records here", column))
  )
}
# Each declared comparison as a rule on the patient rows: 1 the level, 0 the reference, NA neither.
subgroups <- list()
for (i in seq_len(nrow(declared))) {
  local({
    d <- declared[i, ]
    subgroups[[d$factor]] <<- function(p) {
      value <- adsl_variable(p, d$column)
      ifelse(value == d$level, 1, ifelse(value == d$reference, 0, NA))
    }
  })
}

level_median <- function(time, event) {
  if (!length(time)) return(c(median = NA, median_midpoint = NA))
  fit <- km(time, event)
  c(median = first_crossing(fit), median_midpoint = midpoint_median(fit))
}

cox <- function(time, event, x) {
  infinite <- FALSE
  fit <- withCallingHandlers(
    coxph(Surv(time, event) ~ x, ties = "efron", control = COX_CONTROL),
    warning = function(w) {
      # coxph's own signal that the likelihood is monotone: the estimate diverges, there is no finite HR.
      if (grepl("infinite", conditionMessage(w))) infinite <<- TRUE
      invokeRestart("muffleWarning")
    }
  )
  if (infinite) return(c(hr = NA, hr_ci_lower = NA, hr_ci_upper = NA, cox_p = NA))
  beta <- unname(coef(fit))
  se <- sqrt(fit$var[1, 1])
  c(hr = exp(beta), hr_ci_lower = exp(beta - Z * se), hr_ci_upper = exp(beta + Z * se), cox_p = 2 * pnorm(-abs(beta / se)))
}

for (file in cut_files) {
  cut <- sub("\\.csv$", "", file)
  followup <- read_records(file.path("followup", file))
  cohort <- merge(followup, adsl, by = "patient_id")
  for (endpoint in names(endpoints)) {
    time <- followup[[endpoints[[endpoint]][1]]]
    event <- followup[[endpoints[[endpoint]][2]]]
    at <- list(data_cut = cut, endpoint = endpoint)
    fit <- km(time, event)

    # Step function: one row per distinct time (censorings included), each statistic as one column of values.
    do.call(emit_all, c(list("survival_curves", list(
      at_risk = fit$n.risk, events = fit$n.event, censored = fit$n.censor, surv = fit$surv,
      std_err = fit$surv * fit$std.err, ci_lower = fit$lower, ci_upper = fit$upper
    )), at, list(time = fit$time)))

    # Medians: SPSS's interval written out, and quantile.survfit's Brookmeyer-Crowley interval.
    common <- c(n = length(time), events = sum(event), median = first_crossing(fit), median_midpoint = r_median(fit)[["median_midpoint"]])
    spss <- spss_median(fit)
    do.call(emit_all, c(list("survival_summary", c(common, spss[c("se", "ci_lower", "ci_upper")])), at, key = "spss"))
    bc <- r_median(fit)
    # Brookmeyer-Crowley gives an interval, not a standard error.
    do.call(emit_all, c(list("survival_summary", c(common, se = NA, bc[c("ci_lower", "ci_upper")])), at, key = "brookmeyer_crowley_loglog"))

    # Landmarks every 3 months up to the first multiple of 3 at or after the last time. summary.survfit
    # without extend returns no row beyond the last time: S(t) is not estimated there.
    grid <- seq(0, 3 * ceiling(max(time) / 3), by = 3)
    s <- summary(fit, times = grid)
    j <- match(grid, s$time)
    do.call(emit_all, c(list("survival_landmarks", list(
      at_risk = sapply(grid, function(m) sum(time >= m)),
      events_cum = sapply(grid, function(m) sum(time <= m & event == 1)),
      censored_cum = sapply(grid, function(m) sum(time <= m & event == 0)),
      surv = s$surv[j], ci_lower = s$lower[j], ci_upper = s$upper[j]
    )), at, list(time = grid)))

    # Follow-up by reverse Kaplan-Meier: being censored is the event, an event censors.
    reverse <- km(time, 1 - event)
    do.call(emit_all, c(list("survival_followup", c(
      n = length(time), censored = sum(event == 0), median = first_crossing(reverse),
      r_median(reverse), min = min(time), max = max(time)
    )), at))

    # Subgroups: log-rank (survdiff) and Cox (coxph, Efron ties) of the level (1) against the reference (0).
    t_sub <- cohort[[endpoints[[endpoint]][1]]]
    e_sub <- cohort[[endpoints[[endpoint]][2]]]
    for (factor in names(subgroups)) {
      x <- subgroups[[factor]](cohort)
      keep <- !is.na(x)
      tt <- t_sub[keep]; ee <- e_sub[keep]; xx <- x[keep]
      level <- level_median(tt[xx == 1], ee[xx == 1])
      reference <- level_median(tt[xx == 0], ee[xx == 0])
      values <- c(
        n = sum(xx == 1), events = sum(ee[xx == 1]), median = level[["median"]], median_midpoint = level[["median_midpoint"]],
        n_ref = sum(xx == 0), events_ref = sum(ee[xx == 0]), median_ref = reference[["median"]],
        median_ref_midpoint = reference[["median_midpoint"]]
      )
      testable <- sum(xx == 1) > 0 && sum(xx == 0) > 0 && sum(ee) > 0
      logrank_p <- if (testable) {
        test <- survdiff(Surv(tt, ee) ~ xx)
        pchisq(test$chisq, df = 1, lower.tail = FALSE)
      } else NA
      hazard <- if (testable && sum(ee[xx == 1]) > 0 && sum(ee[xx == 0]) > 0) cox(tt, ee, xx) else
        c(hr = NA, hr_ci_lower = NA, hr_ci_upper = NA, cox_p = NA)
      do.call(emit_all, c(list("survival_subgroups", c(values, hazard, logrank_p = logrank_p)), at, key = factor))
    }
  }
}

# ---- Table 2: best overall response (RECIST 1.1) ----------------------------------------------------------

bor <- response[!is.na(response$best_response), ]
responders <- function(categories) sum(bor$best_response %in% categories)
denominator <- nrow(bor)
categories <- c("CR", "PR", "SD", "PD", if (any(bor$best_response == "NE")) "NE")
for (category in categories) {
  k <- responders(category)
  emit_all("response_summary", c(n = k, denominator = denominator, pct = 100 * k / denominator, ci_lower_pct = NA, ci_upper_pct = NA),
           key = paste0("response.", category))
}
for (rate in list(c("orr", "CR", "PR"), c("dcr", "CR", "PR", "SD"))) {
  k <- responders(rate[-1])
  ci <- binom.test(k, denominator)$conf.int  # Clopper-Pearson
  emit_all("response_summary", c(n = k, denominator = denominator, pct = 100 * k / denominator,
                                 ci_lower_pct = 100 * ci[1], ci_upper_pct = 100 * ci[2]), key = rate[1])
}

# PR rate with and without a combined therapy, compared by Fisher's exact test (two-sided).
treated <- merge(bor, patients, by = "patient_id")
combined <- treated$combination_therapy != "None"
counts <- rbind(
  combination = c(sum(treated$best_response[combined] == "PR"), sum(treated$best_response[combined] != "PR")),
  monotherapy = c(sum(treated$best_response[!combined] == "PR"), sum(treated$best_response[!combined] != "PR"))
)
fisher_p <- if (all(rowSums(counts) > 0)) fisher.test(counts)$p.value else NA
for (group in rownames(counts)) {
  emit_all("tumour_shrinkage", c(n = unname(counts[group, 1]), denominator = sum(counts[group, ]),
                                 pct = 100 * unname(counts[group, 1]) / sum(counts[group, ]), p_value = fisher_p),
           key = paste0("pr_rate.", group))
}

# ---- Table 1: n and % of all patients --------------------------------------------------------------------

total <- nrow(adsl)
count_level <- function(key, members) {
  emit_all("baseline_summary", c(n = sum(members), pct = 100 * sum(members) / total, value = NA), key = key)
}
count_level("patients", rep(TRUE, total))
for (statistic in list(c("median", median), c("min", min), c("max", max))) {
  emit_all("baseline_summary", c(n = NA, pct = NA, value = statistic[[2]](adsl$age)), key = paste0("age.", statistic[[1]]))
}
count_level("sex.male", adsl$sex == "Male")
count_level("sex.female", adsl$sex == "Female")
for (score in sort(union(0:2, adsl$ecog))) count_level(paste0("ecog.", score), adsl$ecog == score)
for (site in unique(adsl$primary_site)) count_level(paste0("site.", slug(site)), adsl$primary_site == site)
for (answer in c("Yes", "No")) {
  count_level(paste0("surgery.", tolower(answer)), adsl$surgery_history == answer)
  count_level(paste0("radiotherapy.", tolower(answer)), adsl$radiotherapy_history == answer)
}
lines <- c(none = "No", "1_line" = "1 line", "2_lines" = "2 line", "3plus_lines" = "3 line and more")
for (name in names(lines)) count_level(paste0("chemotherapy.", name), adsl$chemotherapy_history == lines[[name]])
for (dose in unique(adsl$starting_dose_mg)) count_level(paste0("dose.", dose, "mg"), adsl$starting_dose_mg == dose)
count_level("combination.no", adsl$combination_therapy == "None")
count_level("combination.yes", adsl$combination_therapy != "None")

# ---- Table 4: each patient once per term, at the worst CTCAE grade -----------------------------------

grade_counts <- function(worst) {
  groups <- list(g12 = worst <= 2, g34 = worst >= 3 & worst <= 4, g5 = worst == 5)
  values <- c(total_n = length(worst), total_pct = 100 * length(worst) / total)
  for (g in names(groups)) values[paste0(g, c("_n", "_pct"))] <- c(sum(groups[[g]]), 100 * sum(groups[[g]]) / total)
  values
}
worst_overall <- tapply(adverse$ctcae_grade, adverse$patient_id, max)
emit_all("ae_summary", grade_counts(worst_overall), key = "ae.any")
for (term in unique(adverse$term)) {
  episodes <- adverse[adverse$term == term, ]
  emit_all("ae_summary", grade_counts(tapply(episodes$ctcae_grade, episodes$patient_id, max)), key = paste0("ae.", slug(term)))
}
for (action in list(c("dose_reduction", "dose_reduced"), c("discontinuation", "discontinued_for_toxicity"))) {
  k <- sum(adsl[[action[2]]] == "Yes")
  emit_all("ae_summary", c(total_n = k, total_pct = 100 * k / total, g12_n = NA, g12_pct = NA,
                                      g34_n = NA, g34_pct = NA, g5_n = NA, g5_pct = NA), key = action[1])
}

# ---- output ---------------------------------------------------------------------------------------------------

results <- do.call(rbind, rows)
# 17 significant digits: every double is written so that it reads back as the same double.
results$time <- ifelse(is.na(results$time), "NA", sprintf("%.17g", results$time))
results$value <- ifelse(is.na(results$value), "NA", sprintf("%.17g", results$value))
write.csv(results, file.path(out, "results.csv"), row.names = FALSE, quote = TRUE)
versions <- data.frame(
  name = c("R", "survival"),
  value = c(paste(R.version$major, R.version$minor, sep = "."), as.character(packageVersion("survival")))
)
write.csv(versions, file.path(out, "versions.csv"), row.names = FALSE)
cat(sprintf("%d values written to %s\n", nrow(results), file.path(out, "results.csv")))

"""Labels of a rating task's results page (English and Chinese)."""

MESSAGES: dict[str, dict[str, str]] = {
    "rr.title": {"en": "Results", "zh": "结果"},
    "rr.link": {"en": "Results, agreement and quality", "zh": "结果、一致性与质量"},
    "rr.version": {"en": "Rubric version", "zh": "评分标准版本"},
    "rr.version.task": {"en": "the task's", "zh": "任务所用"},
    "rr.version.help": {
        "en": "Scores keep the values they were given; another version's weights and threshold recompute "
        "usability without re-rating.",
        "zh": "分数保持打分时的数值；选择其他版本会按其权重和阈值重新计算可用性，无需重新评分。",
    },
    "rr.use_adjudicated": {"en": "use adjudicated scores", "zh": "使用裁定分数"},
    "rr.apply": {"en": "Apply", "zh": "应用"},
    "rr.ignored.not_in_version": {
        "en": "is not in this version: ignored in",
        "zh": "不在此版本中：已忽略，涉及",
    },
    "rr.ignored.scale_changed": {
        "en": "has another scale in this version: ignored in",
        "zh": "在此版本中量表不同：已忽略，涉及",
    },
    "rr.ratings_n": {"en": "ratings", "zh": "条评分"},
    "rr.export_csv": {"en": "CSV per case", "zh": "按样例导出 CSV"},
    "rr.export_jsonl": {"en": "JSONL of all ratings", "zh": "全部评分 JSONL"},
    "rr.cases": {"en": "cases", "zh": "样例"},
    "rr.ratings": {"en": "ratings", "zh": "评分"},
    "rr.adjudicated_cases": {"en": "adjudicated cases", "zh": "已裁定样例"},
    "rr.scores": {"en": "Usability and dimensions", "zh": "可用性与各维度"},
    "rr.scores.help": {
        "en": "Per case: the mean of its raters, or the adjudicated score (marked ◆) when that is switched on. "
        "Means with 95% intervals from a bootstrap over cases.",
        "zh": "每个样例取其评分员的平均分；开启裁定后以裁定分数代替（标记 ◆）。均值附 95% 区间（按样例自助法）。",
    },
    "rr.side": {"en": "Side", "zh": "一侧"},
    "rr.task_type": {"en": "Task type", "zh": "任务类型"},
    "rr.all": {"en": "all", "zh": "全部"},
    "rr.n": {"en": "cases", "zh": "样例数"},
    "rr.usability": {"en": "Usability", "zh": "可用性"},
    "rr.usable": {"en": "Usable", "zh": "可用占比"},
    "rr.threshold": {"en": "usable from", "zh": "可用阈值"},
    "rr.weight": {"en": "weight", "zh": "权重"},
    "rr.table": {"en": "Table", "zh": "表格"},
    "rr.no_ratings": {"en": "No ratings yet.", "zh": "还没有评分。"},
    "rr.preference_only": {
        "en": "This task asks raters for the preference only: see the pairwise results below.",
        "zh": "此任务只要求评分员给出偏好：见下方成对比较结果。",
    },
    "rr.pairwise": {"en": "Pairwise: A against B", "zh": "成对比较：A 对 B"},
    "rr.pairwise.help": {
        "en": "Each case counts once: its raters' verdicts become shares of the case. Win rate = win + tie / 2.",
        "zh": "每个样例只计一次：其评分员的判断按比例计入。胜率 = 胜 + 平 / 2。",
    },
    "rr.win": {"en": "A better", "zh": "A 更好"},
    "rr.tie": {"en": "tie", "zh": "平"},
    "rr.loss": {"en": "B better", "zh": "B 更好"},
    "rr.win_rate": {"en": "A's win rate", "zh": "A 的胜率"},
    "rr.agreement": {"en": "Agreement", "zh": "一致性"},
    "rr.agreement.help": {
        "en": "Krippendorff's alpha (ordinal) over all raters; quadratic-weighted kappa per pair of raters "
        "who rated the same cases. Raw ratings: adjudication does not count.",
        "zh": "Krippendorff alpha（有序）覆盖全部评分员；二次加权 kappa 按共同评过同一样例的评分员两两计算。"
        "仅用原始评分，不含裁定。",
    },
    "rr.dimension": {"en": "Dimension", "zh": "维度"},
    "rr.alpha": {"en": "alpha", "zh": "alpha"},
    "rr.kappa_mean": {"en": "mean kappa", "zh": "平均 kappa"},
    "rr.pairs": {"en": "rater pairs, lowest kappa first", "zh": "评分员对（kappa 从低到高）"},
    "rr.pairs_n": {"en": "pairs", "zh": "对"},
    "rr.preference": {"en": "Preference", "zh": "偏好"},
    "rr.with_ties": {"en": "agreement with ties", "zh": "含平局一致率"},
    "rr.without_ties": {"en": "without ties", "zh": "不含平局一致率"},
    "rr.ceiling": {"en": "human ceiling", "zh": "人类上限"},
    "rr.ceiling.help": {
        "en": "Human–human agreement on pairwise preference in MT-Bench: about 63% with ties, 81% without.",
        "zh": "MT-Bench 中人与人在成对偏好上的一致率：含平局约 63%，不含平局约 81%。",
    },
    "rr.reason.too_few_pairable": {
        "en": "not enough overlap: fewer than two ratings share a case",
        "zh": "重叠不足：共享同一样例的评分少于两条",
    },
    "rr.reason.single_value": {
        "en": "not enough spread: every rating has the same value, so agreement is undefined",
        "zh": "没有差异：所有评分取值相同，一致性无定义",
    },
    "rr.pair.too_few_pairable": {"en": "too few shared cases", "zh": "共同样例太少"},
    "rr.pair.single_value": {"en": "one value only", "zh": "取值单一"},
    "rr.sample": {"en": "sample", "zh": "样本"},
    "rr.disputes": {"en": "Disagreements", "zh": "分歧"},
    "rr.disputes.help": {
        "en": "The cases raters disagree on most (widest normalised range on any dimension, or a split preference). "
        "An adjudication replaces the raters' mean when “use adjudicated scores” is on.",
        "zh": "评分员分歧最大的样例（任一维度归一化极差最大，或偏好不一致）。开启“使用裁定分数”后，裁定分数代替评分员平均分。",
    },
    "rr.no_disputes": {"en": "No case has disagreeing raters.", "zh": "没有评分员意见不一的样例。"},
    "rr.case": {"en": "Case", "zh": "样例"},
    "rr.widest": {"en": "widest", "zh": "分歧最大"},
    "rr.rater": {"en": "Rater", "zh": "评分员"},
    "rr.comment": {"en": "Comment", "zh": "备注"},
    "rr.adjudication": {"en": "Adjudication", "zh": "裁定"},
    "rr.adjudicated": {"en": "adjudicated", "zh": "已裁定"},
    "rr.save": {"en": "Save adjudication", "zh": "保存裁定"},
    "rr.error": {"en": "Not saved", "zh": "未保存"},
    "rr.gold": {"en": "Raters against gold", "zh": "评分员与金标准对比"},
    "rr.gold.help": {
        "en": "Accuracy = 1 − mean normalised distance to the gold scores. Flagged: more than {margin} below the "
        "median rater, among raters with at least {min} gold cases.",
        "zh": "准确度 = 1 − 与金标准分数的平均归一化距离。标记：在至少有 {min} 个金标准样例的评分员中，比中位数低 {margin} 以上。",
    },
    "rr.gold_cases": {"en": "gold cases", "zh": "金标准样例"},
    "rr.rated": {"en": "rated", "zh": "已评"},
    "rr.accuracy": {"en": "accuracy", "zh": "准确度"},
    "rr.exact": {"en": "exact", "zh": "完全一致"},
    "rr.far": {"en": "far from gold", "zh": "偏离金标准"},
    "rr.no_gold": {"en": "No gold cases in this task.", "zh": "此任务没有金标准样例。"},
    # The API, as the tokens page lists it
    "api.GET /api/rating/{task_id}/results": {
        "en": "A rating task's results: usability and dimensions per task type with 95% intervals, pairwise "
        "win/tie/loss, agreement, disputed cases, raters against gold (?version=, ?adjudicated=true)",
        "zh": "评分任务的结果：按任务类型的可用性与各维度（附 95% 区间）、成对胜/平/负、一致性、分歧样例、评分员与金标准对比"
        "（?version=、?adjudicated=true）",
    },
    "api.GET /api/rating/{task_id}/results.csv": {
        "en": "A rating task's results as CSV, one row per case: each rater's scores, mean, usability, adjudicated",
        "zh": "评分任务结果 CSV，每个样例一行：各评分员分数、平均分、可用性、是否裁定",
    },
    "api.GET /api/rating/{task_id}/ratings.jsonl": {
        "en": "Every rating of a task as JSONL, in A/B terms",
        "zh": "任务的全部评分 JSONL（按 A/B 表示）",
    },
    "api.POST /api/rating/cases/{case_id}/adjudication": {
        "en": "Adjudicate a disputed case: {scores, preference?} in A/B terms; replaces an earlier adjudication",
        "zh": "裁定有分歧的样例：按 A/B 表示的 {scores, preference?}；替换之前的裁定",
    },
    "rr.judges": {"en": "LLM judges against the raters", "zh": "LLM 裁判与评分员的一致性"},
    "rr.judges.help": {
        "en": "Each judge is compared with every human rater on the cases both rated; its ratings never enter "
        "the means above. Trust a judge whose agreement with the raters is close to theirs with each other.",
        "zh": "每个裁判与每位人工评分员在双方都评过的样例上比较；裁判的评分从不计入上面的均值。"
        "裁判与评分员的一致性接近评分员彼此之间的一致性时，才值得信任。",
    },
    "rr.judge": {"en": "judge", "zh": "裁判"},
    "rr.judge_cases": {"en": "cases judged", "zh": "已评样例"},
    "rr.vs_raters": {"en": "kappa with each rater", "zh": "与各评分员的 kappa"},
}

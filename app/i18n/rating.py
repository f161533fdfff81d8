"""Labels of the researcher's rating pages (English and Chinese); the rater's pages have their own."""

MESSAGES: dict[str, dict[str, str]] = {
    "rating.tasks": {"en": "Rating tasks", "zh": "评分任务"},
    "rating.new": {"en": "New rating task", "zh": "新建评分任务"},
    "rating.none": {"en": "No rating tasks yet.", "zh": "还没有评分任务。"},
    "rating.name": {"en": "Name", "zh": "名称"},
    "rating.name.help": {
        "en": "raters see this name: do not name the models in it",
        "zh": "评分员会看到此名称：请勿在其中写出模型名",
    },
    "rating.mode": {"en": "Mode", "zh": "模式"},
    "rating.mode.absolute": {"en": "absolute (one answer)", "zh": "绝对评分（单个回答）"},
    "rating.mode.pairwise": {"en": "pairwise (two answers)", "zh": "成对比较（两个回答）"},
    "rating.score_sides": {
        "en": "pairwise: score the rubric for each side too",
        "zh": "成对比较：每一侧也按评分标准打分",
    },
    "rating.sampling_a": {"en": "Sampling job A", "zh": "采样任务 A"},
    "rating.sampling_b": {"en": "Sampling job B (pairwise)", "zh": "采样任务 B（成对比较）"},
    "rating.raters": {"en": "Raters", "zh": "评分员"},
    "rating.rater": {"en": "Rater", "zh": "评分员"},
    "rating.overlap": {"en": "Overlap", "zh": "重叠数"},
    "rating.overlap.help": {
        "en": "each case goes to this many distinct raters",
        "zh": "每个样例分配给这么多位不同的评分员",
    },
    "rating.cases": {"en": "Cases", "zh": "样例"},
    "rating.cases.all": {"en": "all", "zh": "全部"},
    "rating.cases.task_type": {"en": "one task type", "zh": "单一任务类型"},
    "rating.cases.sample": {"en": "a sample of K per task type", "zh": "每个任务类型抽取 K 个"},
    "rating.level1": {"en": "level 1", "zh": "一级"},
    "rating.level2": {"en": "level 2", "zh": "二级"},
    "rating.rubric": {"en": "Rubric", "zh": "评分标准"},
    "rating.rubrics": {"en": "Rubrics", "zh": "评分标准"},
    "rating.rubrics.help": {
        "en": "Every change makes a new version; ratings keep the version they were given under.",
        "zh": "每次修改都会生成新版本；评分记录保留其打分时的版本。",
    },
    "rating.create": {"en": "Create", "zh": "创建"},
    "rating.progress": {"en": "Rated", "zh": "已评"},
    "rating.gold": {"en": "gold cases", "zh": "金标样例"},
    "rating.ratings_json": {"en": "all ratings (JSON)", "zh": "全部评分（JSON）"},
    "rating.per_rater": {"en": "Raters' progress", "zh": "评分员进度"},
    "rating.submitted": {"en": "Submitted", "zh": "已提交"},
    "rating.active": {"en": "Open", "zh": "进行中"},
    "rating.skipped": {"en": "Skipped", "zh": "已跳过"},
    "rating.results": {"en": "Results", "zh": "结果"},
    "rating.results.help": {
        "en": "Usability and every dimension per task type with 95% intervals, under any version of the rubric; "
        "win/tie/loss; agreement between raters and with LLM judges; disputes to adjudicate; raters against gold.",
        "zh": "各任务类型的可用性与各维度（含 95% 置信区间，可换用评分标准的任一版本）；胜/平/负；评分员之间及与 LLM "
        "裁判的一致性；待裁定的分歧；评分员与金标的对比。",
    },
    "rating.dimension": {"en": "Dimension", "zh": "维度"},
    "rating.identity": {"en": "Answers that name a model", "zh": "提到模型名称的回答"},
    "rating.no_identity": {"en": "No answer names a model.", "zh": "没有回答提到模型名称。"},
    "rating.names_found": {"en": "Names found", "zh": "发现的名称"},
    "rating.case": {"en": "Case", "zh": "样例"},
    "rating.flagged": {"en": "Flags and comments", "zh": "标记与评论"},
    "rating.no_flags": {"en": "No flags or comments.", "zh": "没有标记或评论。"},
    "rating.flag": {"en": "Flag", "zh": "标记"},
    "rating.comment": {"en": "Comment", "zh": "评论"},
    "rating.threshold": {"en": "usable at", "zh": "可用阈值"},
    "rating.scale": {"en": "Scale", "zh": "量表"},
    "rating.weight": {"en": "Weight", "zh": "权重"},
    "rating.guidance": {"en": "Guidance", "zh": "说明"},
    "rating.gold_title": {"en": "Gold cases", "zh": "金标样例"},
    "rating.gold.help": {
        "en": "Your own scores on a case, in A/B terms (the jobs, not the raters' left and right); raters do "
        "not know which cases are gold. Empty scores unmark the case.",
        "zh": "你对某个样例的评分，以 A/B（采样任务）表示，而非评分员看到的左右；评分员不知道哪些是金标样例。评分留空则取消标记。",
    },
    "rating.scores_json": {"en": "Scores (JSON)", "zh": "评分（JSON）"},
    "rating.preference": {"en": "Better", "zh": "更好的一方"},
    "rating.save": {"en": "Save", "zh": "保存"},
    "rating.gold_saved": {"en": "Gold case saved.", "zh": "金标样例已保存。"},
    "rating.rubric_saved": {"en": "Rubric saved.", "zh": "评分标准已保存。"},
    "rating.rubric_edit": {"en": "Change (a new version)", "zh": "修改（生成新版本）"},
    "rating.rubric_new": {"en": "New rubric", "zh": "新建评分标准"},
    "rating.save_version": {"en": "Save as a new version", "zh": "保存为新版本"},
    "rating.rubric.help": {
        "en": "A JSON list of dimensions: key, name_en, name_zh, guidance_en, guidance_zh, scale (binary, 1-5, "
        "1-10), weight. Usability is the weighted mean of the scores scaled to 0..1; at or above the threshold a "
        "case is usable.",
        "zh": "维度的 JSON 列表：key、name_en、name_zh、guidance_en、guidance_zh、scale（binary、1-5、1-10）、"
        "weight。可用性为各项得分缩放到 0..1 后的加权平均；不低于阈值即为可用。",
    },
    # The JSON API as the tokens page lists it ("api.<METHOD> <path>").
    "api.GET /api/rate": {
        "en": "Your rating tasks: name, mode, done/total and the page's URL.",
        "zh": "你的评分任务：名称、模式、已完成/总数和页面地址。",
    },
    "api.GET /api/rate/history": {
        "en": "Your submitted ratings, newest first, each with the URL that reopens it for an edit.",
        "zh": "你提交过的评分，最新的在前，每条附有重新打开以修改的地址。",
    },
    "api.POST /api/rate/{task_key}/next": {
        "en": 'Your next case ({"exclude"?: [token]}): an open one, else a newly claimed one; case null when none is left.',
        "zh": '下一个样例（{"exclude"?: [token]}）：优先返回未完成的，否则领取新的；没有剩余时 case 为 null。',
    },
    "api.GET /api/rate/a/{token}": {
        "en": "One case by its token, with your stored answer when submitted.",
        "zh": "按令牌获取单个样例；已提交时附带你保存的答案。",
    },
    "api.POST /api/rate/a/{token}": {
        "en": "Store the answer ({scores, preference, flag, comment, duration_ms}); a submitted token is updated.",
        "zh": "保存答案（{scores, preference, flag, comment, duration_ms}）；已提交的令牌会被更新。",
    },
    "api.POST /api/rate/a/{token}/skip": {
        "en": "Skip the case: it is not offered to you again and goes back to the pool.",
        "zh": "跳过该样例：不会再分配给你，并回到待分配池。",
    },
    "api.POST /api/rate/{task_key}/undo": {
        "en": "Reopen your most recent submission in the task, to be rated again.",
        "zh": "重新打开你在该任务中最近一次提交，以便重新评分。",
    },
    "api.GET /api/rating/tasks": {
        "en": "Rating tasks, newest first, with submitted ratings against the target.",
        "zh": "评分任务列表（最新在前），含已提交评分数与目标数。",
    },
    "api.POST /api/rating/tasks": {
        "en": 'Create a rating task: {"name", "mode": absolute|pairwise, "sampling_a", "sampling_b"?, "raters": '
        '[user id], "overlap", "cases"?: {"kind": all|task_type|sample, "task_type"?, "per_type"?, "level"?}, '
        '"rubric_version_id"?, "score_sides"?, "seed"?}.',
        "zh": '创建评分任务：{"name", "mode": absolute|pairwise, "sampling_a", "sampling_b"?, "raters": '
        '[user id], "overlap", "cases"?: {"kind": all|task_type|sample, "task_type"?, "per_type"?, "level"?}, '
        '"rubric_version_id"?, "score_sides"?, "seed"?}。',
    },
    "api.GET /api/rating/tasks/{task_id}": {
        "en": "One task: progress per rater, flags and comments, identity flags, means per dimension and task_type.",
        "zh": "单个任务：各评分员进度、标记与评论、身份标记、按维度和任务类型的均值。",
    },
    "api.GET /api/rating/tasks/{task_id}/ratings": {
        "en": "Every stored answer of the task in A/B terms (the jobs, not the screen's left and right).",
        "zh": "该任务全部已保存的答案，以 A/B（采样任务）表示，而非屏幕上的左右。",
    },
    "api.POST /api/rating/tasks/{task_id}/cases/{case_id}/gold": {
        "en": 'Mark a case gold with your scores in A/B terms ({"scores", "preference"?}); null unmarks it.',
        "zh": '以 A/B 表示的你的评分将样例标为金标（{"scores", "preference"?}）；null 取消标记。',
    },
    "api.GET /api/rating/rubrics": {
        "en": "Every rubric with all its versions.",
        "zh": "全部评分标准及其所有版本。",
    },
    "api.POST /api/rating/rubrics": {
        "en": 'A new rubric: {"name", "dimensions": [{key, name_en, name_zh?, guidance_en?, guidance_zh?, scale, '
        'weight}], "usable_threshold"?}.',
        "zh": '新建评分标准：{"name", "dimensions": [{key, name_en, name_zh?, guidance_en?, guidance_zh?, scale, '
        'weight}], "usable_threshold"?}。',
    },
    "api.POST /api/rating/rubrics/{rubric_id}": {
        "en": 'Change a rubric: a new version ({"dimensions", "usable_threshold"?}).',
        "zh": '修改评分标准：生成新版本（{"dimensions", "usable_threshold"?}）。',
    },
}

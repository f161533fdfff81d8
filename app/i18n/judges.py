"""Labels of the LLM judge pages (English and Chinese), and the judge library's parse failures in both.

A failure's reason is stored in English as app.judge.parse words it; `reason_zh` gives the Chinese for
the page, pattern by pattern, keeping the dimension names and values it quotes.
"""

import re

MESSAGES: dict[str, dict[str, str]] = {
    "judges.title": {"en": "LLM judges", "zh": "LLM 评审"},
    "jobs.kind.judge": {"en": "LLM judge", "zh": "LLM 评审"},
    "judges.none": {"en": "No judges yet.", "zh": "还没有评审模型。"},
    "judges.new": {"en": "New judge", "zh": "新建评审"},
    "judges.name": {"en": "Name", "zh": "名称"},
    "judges.kind": {"en": "Kind", "zh": "类型"},
    "judges.kind.endpoint": {"en": "endpoint (OpenAI-compatible)", "zh": "接口（兼容 OpenAI）"},
    "judges.kind.local": {"en": "local model (sampling program)", "zh": "本地模型（采样程序）"},
    "judges.base_url": {"en": "API root", "zh": "API 根地址"},
    "judges.model": {"en": "Model name", "zh": "模型名称"},
    "judges.key": {"en": "Key", "zh": "密钥"},
    "judges.key.help": {
        "en": "stored encrypted and never shown again; leave empty to keep the stored one",
        "zh": "加密存储，之后不再显示；留空则保留已存的密钥",
    },
    "judges.key.set": {"en": "a key is set, ending in", "zh": "已设置密钥，末四位"},
    "judges.key.set_short": {"en": "a key is set", "zh": "已设置密钥"},
    "judges.key.none": {"en": "no key", "zh": "未设置密钥"},
    "judges.key.reenter": {
        "en": "the stored key can no longer be decrypted: enter it again",
        "zh": "已存的密钥无法解密：请重新输入",
    },
    "judges.key.clear": {"en": "remove the stored key", "zh": "删除已存的密钥"},
    "judges.model_ref": {"en": "Model", "zh": "模型"},
    "judges.model_ref.help": {
        "en": "run:<id>/step-N, run:<id>, embedded or an absolute path",
        "zh": "run:<id>/step-N、run:<id>、embedded 或绝对路径",
    },
    "judges.mode": {"en": "Prompt as", "zh": "提示方式"},
    "judges.mode.chat": {"en": "chat (user message)", "zh": "对话（用户消息）"},
    "judges.mode.continuation": {"en": "continuation (raw text)", "zh": "续写（原始文本）"},
    "judges.lang": {"en": "Prompt language", "zh": "提示语言"},
    "judges.temperature": {"en": "Temperature", "zh": "温度"},
    "judges.max_tokens": {"en": "Max tokens", "zh": "最大 token 数"},
    "judges.templates": {"en": "Prompts", "zh": "提示模板"},
    "judges.templates.help": {
        "en": "Placeholders are {{name}}. Each saved edit is a new version named by its hash; ratings keep "
        "the version they were given under. Empty a prompt to return to the default.",
        "zh": "占位符写作 {{name}}。每次保存的修改都是以哈希命名的新版本；评分记录保留所用的版本。清空即恢复默认提示。",
    },
    "judges.version": {"en": "version", "zh": "版本"},
    "judges.edited": {"en": "edited", "zh": "已修改"},
    "judges.default": {"en": "default", "zh": "默认"},
    "judges.groups": {"en": "Dimension groups per task type", "zh": "按任务类型的维度组"},
    "judges.groups.help": {
        "en": "one `task_type = group` a line; groups: factual, reasoning, writing, advisory",
        "zh": "每行一个 `任务类型 = 组`；组：factual、reasoning、writing、advisory",
    },
    "judges.dimensions": {"en": "Scores", "zh": "评分维度"},
    "judges.dimensions.alignbench": {
        "en": "AlignBench's dimensions for the task type (1 to 10)",
        "zh": "按任务类型的 AlignBench 维度（1～10 分）",
    },
    "judges.dimensions.rubric": {
        "en": "the task's rubric, on its own scales (compared with the human raters)",
        "zh": "任务自己的评分标准及其分值范围（可与人工评分员比较）",
    },
    "judges.rater": {"en": "Rater account", "zh": "评分员账号"},
    "judges.save": {"en": "Save", "zh": "保存"},
    "judges.saved": {"en": "Saved.", "zh": "已保存。"},
    "judges.create": {"en": "Create", "zh": "创建"},
    "judges.jobs": {"en": "Judge jobs", "zh": "评审任务"},
    "judges.run": {"en": "Judge a rating task", "zh": "评审一个评分任务"},
    "judges.task": {"en": "Rating task", "zh": "评分任务"},
    "judges.start": {"en": "Start", "zh": "开始"},
    "judges.job": {"en": "Judge job", "zh": "评审任务"},
    "judges.job_in_queue": {"en": "job", "zh": "任务"},
    "judges.status": {"en": "Status", "zh": "状态"},
    "judges.progress": {"en": "Cases", "zh": "样例"},
    "judges.rated": {"en": "rated", "zh": "已评分"},
    "judges.failed": {"en": "replies that did not parse", "zh": "无法解析的回复"},
    "judges.cancel": {"en": "Cancel", "zh": "取消"},
    "judges.resume": {"en": "Resume", "zh": "继续"},
    "judges.state": {"en": "The job is not in a state for that.", "zh": "任务当前状态不允许此操作。"},
    "judges.failures": {"en": "Failures", "zh": "失败"},
    "judges.case": {"en": "Case", "zh": "样例"},
    "judges.task_type": {"en": "Task type", "zh": "任务类型"},
    "judges.reason": {"en": "Reason", "zh": "原因"},
    "judges.excerpt": {"en": "Excerpt", "zh": "摘录"},
    "judges.versions": {"en": "Prompt versions used", "zh": "所用提示版本"},
    "judges.consistency": {"en": "Position consistency", "zh": "位置一致性"},
    "judges.consistency.help": {
        "en": "each pair is judged in both orders; a win counts only when both agree (MT-Bench). Strong "
        "judges agree with themselves after a swap about 65% of the time.",
        "zh": "每对回答按两种顺序各评一次；两次一致才算胜出（MT-Bench）。强评审模型交换顺序后自洽的比例约为 65%。",
    },
    "judges.all": {"en": "all", "zh": "全部"},
    "judges.n": {"en": "Pairs", "zh": "对数"},
    "judges.consistent": {"en": "Consistent", "zh": "一致"},
    "judges.share": {"en": "Share", "zh": "比例"},
    "judges.first": {"en": "First both times", "zh": "两次都选第一个"},
    "judges.second": {"en": "Second both times", "zh": "两次都选第二个"},
    "judges.half_tie": {"en": "Tie in one order", "zh": "一次平局"},
    "judges.a_wins": {"en": "A wins", "zh": "A 胜"},
    "judges.b_wins": {"en": "B wins", "zh": "B 胜"},
    "judges.ties": {"en": "Ties", "zh": "平局"},
    "api.GET /api/judges": {
        "en": "List the LLM judges (the key only described: set or not, its last four characters).",
        "zh": "列出 LLM 评审（密钥只说明是否已设置及末四位）。",
    },
    "api.POST /api/judges": {
        "en": "Create a judge: name, kind (endpoint: base_url, model, key; local: model_ref, mode), lang, "
        "temperature, max_tokens, edited prompts, dimension groups per task type, and dimensions (alignbench "
        "or rubric: what the judge scores).",
        "zh": "创建评审：名称、类型（接口：base_url、model、key；本地：model_ref、mode）、语言、温度、最大 token 数、"
        "修改过的提示模板、按任务类型的维度组，以及 dimensions（alignbench 或 rubric：评审打分的维度）。",
    },
    "api.GET /api/judges/{config_id}": {
        "en": "One judge with its prompts and their versions; never its key.",
        "zh": "单个评审及其提示模板和版本；从不返回密钥。",
    },
    "api.PUT /api/judges/{config_id}": {
        "en": "Change a judge (owner or admin); without a key the stored one is kept.",
        "zh": "修改评审（所有者或管理员）；不传密钥则保留已存的密钥。",
    },
    "api.POST /api/judges/{config_id}/jobs": {
        "en": "Start a judge job on a rating task (task_id).",
        "zh": "在一个评分任务（task_id）上启动评审任务。",
    },
    "api.GET /api/judges/jobs/{judge_job_id}": {
        "en": "A judge job: status, progress in cases, failures with reasons, position consistency.",
        "zh": "评审任务：状态、样例进度、失败及原因、位置一致性。",
    },
    "api.GET /api/judges/jobs/{judge_job_id}/results": {
        "en": "Per case: outcome, prompt version, both orders' verdicts and the judge's explanations.",
        "zh": "逐个样例：结果、提示版本、两种顺序的判断和评审的说明。",
    },
    "api.POST /api/judges/jobs/{judge_job_id}/{action}": {
        "en": "Cancel or resume a judge job; a resume skips the cases already rated.",
        "zh": "取消或继续评审任务；继续时跳过已评分的样例。",
    },
}

# app.judge.parse's reasons, as patterns over the stored English, and their Chinese.
_REASONS_ZH: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^order (AB|BA): (.*)$", re.S), r"顺序 \1：\2"),
    (re.compile(r"^no JSON object with scores at the end of the reply$"), "回复末尾没有包含分数的 JSON 对象"),
    (re.compile(r"^no explanation before the scores$"), "分数之前没有评价说明"),
    (re.compile(r"^no verdict in the scores$"), "分数中没有胜负判断"),
    (re.compile(r"^no scores for answer (\d)$"), r"没有回答\1的分数"),
    (
        re.compile(r"^a pairwise verdict where one answer's scores were expected$"),
        "此处应为单个回答的分数，却是成对比较的判断",
    ),
    (re.compile(r"^(answer \d: )?missing dimension (.+)$"), r"\1缺少维度 \2"),
    (re.compile(r"^(.+): (.+) is not a score$"), r"\1：\2 不是分数"),
    (re.compile(r"^(.+): (.+) is not a whole number$"), r"\1：\2 不是整数"),
    (re.compile(r"^(.+): (.+) is outside the scale (.+)$"), r"\1：\2 超出分数范围 \3"),
    (re.compile(r"^(.+): (.+) is out of (\d+), the scale is (.+)$"), r"\1：\2 的满分是 \3，而分数范围是 \4"),
    (re.compile(r"^verdict (.+) is not 1, 2 or tie$"), r"判断 \1 不是 1、2 或平局"),
]


def reason_zh(reason: str) -> str:
    """The Chinese of a stored parse failure; the English itself for a reason no pattern knows."""
    order = _REASONS_ZH[0][0].match(reason)
    if order:
        return f"顺序 {order.group(1)}：{reason_zh(order.group(2))}"
    for pattern, zh in _REASONS_ZH[1:]:
        if pattern.match(reason):
            return pattern.sub(zh, reason)
    return reason

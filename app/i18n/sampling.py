"""Labels of the sampling pages and API (English and Chinese)."""

MESSAGES: dict[str, dict[str, str]] = {
    "nav.sampling": {"en": "Sampling", "zh": "采样"},
    "jobs.kind.sample": {"en": "sampling", "zh": "采样"},
    "jobs.open.sample": {"en": "Open the answers", "zh": "打开回答"},
    "sampling.from_checkpoint": {"en": "Sample", "zh": "采样"},
    "sampling.new": {"en": "New sampling job", "zh": "新建采样任务"},
    "sampling.none": {"en": "No sampling jobs yet.", "zh": "还没有采样任务。"},
    "sampling.what": {"en": "Model and prompts", "zh": "模型与提示"},
    "sampling.model": {"en": "Model", "zh": "模型"},
    "sampling.model.help": {
        "en": "a run's checkpoint run:<id>/step-N, a run's latest checkpoint run:<id>, embedded, or an absolute path",
        "zh": "训练的检查点 run:<id>/step-N、训练的最新检查点 run:<id>、embedded（内置模型）或绝对路径",
    },
    "sampling.dataset": {"en": "Dataset version", "zh": "数据集版本"},
    "sampling.task": {"en": "Task type", "zh": "任务类型"},
    "sampling.tag": {"en": "Tag", "zh": "标签"},
    "sampling.search": {"en": "Search", "zh": "搜索"},
    "sampling.mode": {"en": "Mode", "zh": "模式"},
    "sampling.mode.chat": {"en": "chat", "zh": "对话"},
    "sampling.mode.continuation": {"en": "continuation (base model)", "zh": "续写（基座模型）"},
    "sampling.backend": {"en": "Backend", "zh": "推理后端"},
    "sampling.params": {"en": "Parameters", "zh": "参数"},
    "sampling.stop": {"en": "Stop strings, one a line", "zh": "停止字符串，每行一个"},
    "sampling.system_prompt": {
        "en": "System prompt (replaces the samples')",
        "zh": "系统提示（替换样本中的）",
    },
    "sampling.chat_template": {"en": "Chat template file", "zh": "对话模板文件"},
    "sampling.chat_template.help": {"en": "empty: the model's own", "zh": "留空：使用模型自带模板"},
    "sampling.launch": {"en": "Launch", "zh": "启动"},
    "sampling.prompts": {"en": "Prompts", "zh": "提示数"},
    "sampling.tokens": {"en": "Tokens out", "zh": "输出 token"},
    "sampling.job": {"en": "job and log", "zh": "任务与日志"},
    "sampling.finish": {"en": "Finish reason", "zh": "结束原因"},
    "sampling.cut_share": {"en": "cut by max_new_tokens:", "zh": "被 max_new_tokens 截断："},
    "sampling.search_answers": {"en": "In the answers", "zh": "回答中包含"},
    "sampling.reference": {"en": "Reference", "zh": "参考答案"},
    "sampling.no_answers": {"en": "No answers match yet.", "zh": "暂无符合条件的回答。"},
    "sampling.next": {"en": "Next page", "zh": "下一页"},
    "sampling.resume": {"en": "Resume", "zh": "继续"},
    "sampling.cancelled": {"en": "Cancel requested.", "zh": "已请求取消。"},
    "sampling.resumed": {
        "en": "Queued again; answered prompts are skipped.",
        "zh": "已重新排队；已回答的提示将跳过。",
    },
    "api.GET /api/sampling": {
        "en": "Sampling jobs, newest first: model, dataset version, parameters, status and progress.",
        "zh": "采样任务列表（最新在前）：模型、数据集版本、参数、状态和进度。",
    },
    "api.POST /api/sampling": {
        "en": 'Launch a sampling job: {"model", "dataset_id", "version", "filter"?, "params"?, "mode"?, "backend"?, '
        '"system_prompt"?, "chat_template_file"?}.',
        "zh": '启动采样任务：{"model", "dataset_id", "version", "filter"?, "params"?, "mode"?, "backend"?, '
        '"system_prompt"?, "chat_template_file"?}。',
    },
    "api.GET /api/sampling/{sampling_id}": {
        "en": "One sampling job: summary, finish-reason counts and a page of prompts with their answers.",
        "zh": "单个采样任务：概要、各结束原因计数，以及一页提示及其回答。",
    },
    "api.POST /api/sampling/{sampling_id}/cancel": {
        "en": "Cancel a sampling job (queued: at once; running: within a heartbeat).",
        "zh": "取消采样任务（排队中：立即；运行中：一个心跳内）。",
    },
    "api.POST /api/sampling/{sampling_id}/resume": {
        "en": "Queue a failed, cancelled or lost sampling job again, skipping answered prompts.",
        "zh": "重新排队失败、取消或丢失的采样任务，跳过已回答的提示。",
    },
    "api.GET /api/sampling/{sampling_id}/export.jsonl": {
        "en": "Every answer as JSONL, with the reference.",
        "zh": "以 JSONL 导出全部回答（含参考答案）。",
    },
    "api.GET /api/sampling/{sampling_id}/export.csv": {
        "en": "Every answer as CSV, one row per answer.",
        "zh": "以 CSV 导出全部回答，每行一个回答。",
    },
}

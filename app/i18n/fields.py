"""Help lines of the trainer's config fields on the launch form.

English comes from trainer.config (each field's own help, the one source); Chinese is kept here, keyed by
field name, and a test checks that every field the form shows has both.
"""

from trainer.config import describe_fields

ZH: dict[str, str] = {
    "data.eval_fraction": "从训练样本中留出用于验证的比例（0 = 不做验证）。",
    "data.max_seq_len": "打包后最长序列（bin）的 token 数。",
    "data.over_length": "超过 max_seq_len 的样本：error（训练前报错）、truncate（截掉末尾）或 drop（丢弃）。",
    "model.chat_template_file": "代替分词器自带模板的 Jinja 聊天模板文件（损失掩码和保存的检查点都使用它）。留空：使用分词器的模板。",
    "model.tokenizer_path": "与模型不同的分词器目录。留空：与模型相同。",
    "model.attn_implementation": "注意力实现。auto：GPU 且 bf16 时，已安装 flash_attention_2 则用它，否则用 torch 的 varlen 内核，否则用 sdpa；CPU 和 fp32 用 sdpa。sdpa/eager：块对角掩码（O(L²) 显存）；flash_attention_2/varlen：仅 GPU，仅 bf16/fp16。",
    "model.compile": "用 torch.compile 编译每个解码层，把归一化、旋转位置编码和 MLP 的逐元素运算融合成少数内核（编译期间最初几步较慢）。auto：CUDA GPU 上开启（ZeRO-3 除外）；CPU 上关闭，编译耗时超过短任务所省的时间。",
    "loss.scope": "哪些 assistant 轮次计算损失：全部，或仅最后一轮。",
    "loss.prompt_loss": "同时训练 prompt（system/user）token。工具返回结果从不计算损失。",
    "loss.eos_in_loss": "assistant 轮次的结束符 / EOS token 计入损失。",
    "loss.normalisation": "token：每个监督 token 权重相同；sample：每个样本相同；task：每个 task_type 相同。",
    "loss.task_level": "task 归一化所用的 task_type 层级（1 或 2）。",
    "packing.enabled": "按最佳适应递减（BFD）把样本打包进长度为 max_seq_len 的 bin。",
    "packing.chunk_size": "输出层 + 交叉熵每个分块处理的监督位置数。",
    "train.epochs": "遍历数据的轮数；可为小数（1.1 会重复前 10%）。",
    "train.max_steps": "训练这么多个优化器步后停止（0：跑完全部轮数）；设为 2 可快速冒烟测试一套配置。",
    "train.lr": "峰值学习率。",
    "train.scheduler": "warmup 之后的学习率调度。",
    "train.warmup_steps": "以优化器步数计的线性 warmup（优先于 warmup_ratio）。",
    "train.warmup_ratio": "以总步数比例计的线性 warmup（warmup_steps 为 0 时生效）。",
    "train.min_lr_ratio": "最终学习率占 lr 的比例（cosine、linear）。",
    "train.per_device_batch": "每个设备每个 micro-batch 的打包 bin 数。",
    "train.grad_accum": "每个优化器步累积的 micro-batch 数。",
    "train.weight_decay": "AdamW 权重衰减（不作用于 bias 和归一化层）。",
    "train.adam_beta1": "AdamW 的 beta1 参数。",
    "train.adam_beta2": "AdamW 的 beta2 参数。",
    "train.adam_eps": "AdamW 的 epsilon 参数。",
    "train.dropout": "模型的注意力 dropout（0 保持模型自身设置为关闭）。",
    "train.grad_clip": "把全局梯度范数裁剪到此值（0 = 关闭）。",
    "train.seed": "数据顺序、混合子采样和初始化的随机种子。",
    "train.precision": "训练精度（fp16 仅在 DeepSpeed 且 ZeRO 阶段 >= 1 时可用，它会缩放损失）。",
    "train.gradient_checkpointing": "反向时重算激活以节省显存。",
    "train.max_hours": "训练超过此小时数即停止，并先保存检查点以便续训（0 表示不限时）。",
    "finetune.method": "全参数、LoRA 适配器（peft），或冻结部分参数。",
    "finetune.lora_rank": "LoRA 秩 r。",
    "finetune.lora_alpha": "LoRA alpha（缩放 = alpha / r）。",
    "finetune.lora_dropout": "LoRA 输入上的 dropout。",
    "finetune.lora_target_modules": "加 LoRA 适配器的模块名。",
    "finetune.freeze_embeddings": "method=freeze：冻结输入 embedding（及共享权重的输出层）。",
    "finetune.freeze_attention": "method=freeze：冻结所有注意力模块。",
    "finetune.freeze_mlp": "method=freeze：冻结所有 MLP 模块。",
    "finetune.freeze_first_n_layers": "method=freeze：完全冻结前 N 个 decoder 层。",
    "deepspeed.enabled": "通过 DeepSpeed 引擎训练（配置自动生成并保存在运行目录）。",
    "deepspeed.zero_stage": "ZeRO 阶段：0 无，1 优化器状态，2 再加梯度，3 再加参数。",
    "deepspeed.offload_optimizer": "优化器状态放在 CPU 内存（ZeRO 1-3）。",
    "deepspeed.offload_params": "参数放在 CPU 内存（仅 ZeRO 3）。",
    "checkpoint.every_n_steps": "每 N 个优化器步保存一次检查点（0 = 仅在 epoch 结束时）。",
    "checkpoint.at_epoch_end": "每个 epoch 结束时保存检查点。",
    "checkpoint.keep_last": "只保留最近 K 个检查点（0 = 全部保留）。",
    "checkpoint.merge_lora": "LoRA：另存合并后的完整权重，无需 peft 即可加载。",
    "eval.every_n_steps": "每 N 个优化器步验证一次（0 = 仅在结束时）。",
    "eval.rising_k": "验证损失连续 K 次上升时发出警告。",
    "metrics.log_every": "每 N 个优化器步写一条 train 事件。",
    "metrics.peak_flops": "每个设备的峰值 FLOP/s，用于计算 MFU。0：按设备自动识别。",
    "metrics.step_drop_window": "检测阶梯式下降时，在 epoch 边界前后比较的步数。",
    "metrics.step_drop_ratio": "epoch 边界处触发警告的损失相对下降幅度。",
}

MESSAGES: dict[str, dict[str, str]] = {
    f"field.{f['name']}": {"en": f["help"], "zh": ZH[f["name"]]} for f in describe_fields() if f["name"] in ZH
}

"""Looking into a saver's checkpoints from Python, as the `ferrograph` command and the web page
do (one inspection module, `ferrograph._inspect`, serves them all):

    from ferrograph.inspect import diff

    d = diff(saver, {"configurable": {"thread_id": "t", "checkpoint_id": older}},
             {"configurable": {"thread_id": "t"}})            # the thread's latest
    for change in d.channels:
        print(change.channel, change.kind, change.appended)
"""

from ferrograph._inspect import Change, ChannelDiff, CheckpointDiff, diff

__all__ = ["Change", "ChannelDiff", "CheckpointDiff", "diff"]

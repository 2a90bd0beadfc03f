using MoCoV3.IO;
using System.Buffers.Binary;

namespace MoCoV3.Training;

/// <summary>
/// Drops the TensorBoard events logged after a step from the event files of a folder, as <see cref="MetricsLog"/> does for
/// metrics.csv: on resume (and rollback) the steps after the checkpoint are logged again, and TensorBoard would otherwise
/// show both versions. An event file is a sequence of TFRecords (u64 length, u32 masked CRC of the length, the
/// <c>Event</c> protobuf, u32 masked CRC of it); kept records are copied byte for byte, so their CRCs stay valid.
/// A record cut short by a killed run ends the file. Files are rewritten through <see cref="DurableFile"/>.
/// </summary>
public static class TensorBoardRewind
{
    public static void RewindTo(string folder, long step)
    {
        if (!Directory.Exists(folder)) return;
        foreach (string path in Directory.EnumerateFiles(folder, "*tfevents*"))
        {
            if (path.EndsWith(DurableFile.TemporarySuffix, StringComparison.Ordinal))
            {
                File.Delete(path);
                continue;
            }
            byte[] bytes = File.ReadAllBytes(path);
            var kept = new List<ArraySegment<byte>>();
            bool dropped = false;
            int at = 0;
            while (at < bytes.Length)
            {
                if (bytes.Length - at < 16) { dropped = true; break; }
                ulong length = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at));
                if (length > (ulong)(bytes.Length - at - 16)) { dropped = true; break; }
                var record = new ArraySegment<byte>(bytes, at, 16 + (int)length);
                long eventStep;
                try
                {
                    eventStep = Tensorboard.Event.Parser.ParseFrom(bytes, at + 12, (int)length).Step;
                }
                catch (Google.Protobuf.InvalidProtocolBufferException)
                {
                    dropped = true;
                    break;
                }
                if (eventStep <= step) kept.Add(record);
                else dropped = true;
                at += record.Count;
            }
            if (!dropped) continue;
            DurableFile.Write(path, stream => { foreach (var record in kept) stream.Write(record); });
        }
    }
}

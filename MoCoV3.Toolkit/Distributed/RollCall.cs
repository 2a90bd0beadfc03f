using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace MoCoV3.Distributed;

/// <summary>
/// Who is still there, asked when a collective times out: the rank that waited too long sends a call to every other rank
/// (<see cref="Call"/>), and a rank that waits in a collective answers with what it waits in (<see cref="Answer"/>, from its
/// wait loop). A rank that does not answer within the grace period is dead, stopped, hung, or busy outside MPI for at least
/// that long. The messages are point-to-point on MPI_COMM_WORLD with tags of their own, which no collective matches. Their
/// buffers are unmanaged and never freed (a message may still be in flight when the job is aborted): roll calls happen only
/// while a job is failing.
/// </summary>
internal sealed unsafe class RollCall(MpiNative mpi, int rank, int size)
{
    private const int CallTag = 30_517, AnswerTag = 30_518;
    private const int AnswerBytes = 240;

    /// <summary>The lowest rank whose call this rank has answered; null before any call came.</summary>
    public int? LowestCaller { get; private set; }

    /// <summary>Answers every call that has arrived with this rank's <paramref name="state"/>.</summary>
    public void Answer(Func<string> state)
    {
        while (true)
        {
            int pending = 0;
            if (mpi.Iprobe(mpi.AnySource, CallTag, mpi.CommWorld, &pending, mpi.StatusIgnore) != MpiNative.Success || pending == 0) return;
            int caller = -1;
            if (mpi.Recv(&caller, 1, mpi.Int32, mpi.AnySource, CallTag, mpi.CommWorld, mpi.StatusIgnore) != MpiNative.Success) return;
            if (caller < 0 || caller >= size || caller == rank) continue;
            LowestCaller = Math.Min(LowestCaller ?? caller, caller);
            byte* text = Text(state());
            nint request = 0;
            if (mpi.Isend(text, AnswerBytes, mpi.Byte, caller, AnswerTag, mpi.CommWorld, &request) == MpiNative.Success)
                _ = mpi.RequestFree(&request);
        }
    }

    /// <summary>
    /// Calls every other rank and returns each one's answer, by rank (null: none within <paramref name="grace"/>, and for
    /// this rank), answering the calls of other ranks meanwhile with <paramref name="state"/>.
    /// </summary>
    public string?[] Call(TimeSpan grace, Func<string> state)
    {
        var answers = new string?[size];
        var requests = (nint*)NativeMemory.AllocZeroed((nuint)size, (nuint)sizeof(nint));
        var buffers = (byte*)NativeMemory.AllocZeroed((nuint)size, AnswerBytes);
        var self = (int*)NativeMemory.Alloc((nuint)sizeof(int));
        *self = rank;
        var open = new bool[size];
        int waiting = 0;
        for (int q = 0; q < size; q++)
        {
            if (q == rank) continue;
            open[q] = mpi.Irecv(buffers + q * AnswerBytes, AnswerBytes, mpi.Byte, q, AnswerTag, mpi.CommWorld, requests + q) == MpiNative.Success;
            if (open[q]) waiting++;
            nint send = 0;
            if (mpi.Isend(self, 1, mpi.Int32, q, CallTag, mpi.CommWorld, &send) == MpiNative.Success) _ = mpi.RequestFree(&send);
        }
        long deadline = Stopwatch.GetTimestamp() + (long)(grace.TotalSeconds * Stopwatch.Frequency);
        while (waiting > 0 && Stopwatch.GetTimestamp() < deadline)
        {
            for (int q = 0; q < size; q++)
            {
                if (!open[q]) continue;
                int done = 0;
                bool failed = mpi.Test(requests + q, &done, mpi.StatusIgnore) != MpiNative.Success;
                if (!failed && done == 0) continue;
                open[q] = false;
                waiting--;
                if (!failed) answers[q] = Encoding.UTF8.GetString(buffers + q * AnswerBytes, AnswerBytes).TrimEnd('\0');
            }
            Answer(state);
            Thread.Sleep(1);
        }
        return answers;
    }

    private static byte* Text(string text)
    {
        var buffer = (byte*)NativeMemory.AllocZeroed(AnswerBytes);
        var bytes = Encoding.UTF8.GetBytes(text);
        new ReadOnlySpan<byte>(bytes, 0, Math.Min(bytes.Length, AnswerBytes - 1)).CopyTo(new Span<byte>(buffer, AnswerBytes));
        return buffer;
    }
}

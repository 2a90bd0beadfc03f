using MoCoV3.Runtime;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MoCoV3.Optim;

/// <summary>
/// A list of parameters that are views of one flat 1-D tensor, in order: an operation on <see cref="Values"/> is that
/// operation on every parameter at once, with one kernel instead of one per parameter (the momentum update, AdamW, LARS).
/// <see cref="Pack"/> moves the parameters' data into a new buffer and re-points each parameter at its slice
/// (<c>Tensor.set_</c>, in place: the <see cref="Parameter"/> objects, their names in the state dict, shapes and
/// <c>requires_grad</c> stay as they were, so checkpoints are unchanged). Loading weights with <c>copy_</c> or
/// <c>Module.load</c> writes through the views; moving the module to another device or dtype afterwards makes new
/// tensors and undoes the packing, so pack after <c>Module.to</c>.
/// With <see cref="AttachGradients"/>, the gradients live in a second flat tensor the same way.
/// Each parameter starts at a multiple of <see cref="Alignment"/> elements (64 bytes in fp32), as a tensor of its own
/// would (matrix kernels and vectorised loads prefer aligned data); the padding between them is zeros in every flat
/// tensor and stays zero under the momentum update, AdamW and LARS.
/// </summary>
public sealed class ParameterBuffer : IDisposable
{
    private readonly Parameter[] parameters;
    private readonly long[] offsets;
    private Tensor[]? gradientViews;
    private bool disposed;

    private ParameterBuffer(Parameter[] parameters, long[] offsets, Tensor values)
    {
        this.parameters = parameters;
        this.offsets = offsets;
        Values = values;
    }

    /// <summary>
    /// Copies <paramref name="parameters"/> into one new flat tensor (their device and dtype, which must be one) and makes
    /// each parameter a view of its slice. A parameter must not appear twice.
    /// </summary>
    public static ParameterBuffer Pack(IEnumerable<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var list = parameters.ToArray();
        if (list.Length == 0) throw new ArgumentException("no parameters to pack");
        var (device, dtype) = (list[0].device, list[0].dtype);
        var seen = new HashSet<IntPtr>();
        for (int i = 0; i < list.Length; i++)
        {
            var p = list[i];
            if (p.device.type != device.type || p.device.index != device.index || p.dtype != dtype)
                throw new ArgumentException($"one flat buffer needs one device and dtype: parameter 0 is {dtype} on {device}, parameter {i} is {p.dtype} on {p.device}");
            if (!seen.Add(p.Handle)) throw new ArgumentException($"parameter {i} appears twice in the list to pack");
        }
        var offsets = OffsetsOf(list);
        var values = zeros(offsets[^1], dtype: dtype, device: device).DetachFromDisposeScope();
        using (no_grad())
        using (var scope = NewDisposeScope())
        {
            for (int i = 0; i < list.Length; i++)
            {
                var slice = values.narrow(0, offsets[i], list[i].numel()).view(list[i].shape);
                slice.copy_(list[i]);
                list[i].set_(slice);
            }
        }
        return new ParameterBuffer(list, offsets, values);
    }

    /// <summary>Elements each parameter's start is a multiple of.</summary>
    public const int Alignment = 16;

    /// <summary>The flat tensor whose slices the parameters are.</summary>
    public Tensor Values { get; }

    public IReadOnlyList<Parameter> Parameters => parameters;

    /// <summary>Number of elements of the flat tensors: all parameters and the padding after each.</summary>
    public long Count => offsets[^1];

    /// <summary>Where parameter <paramref name="index"/> starts in <see cref="Values"/>; <see cref="Count"/> for index = number of parameters.</summary>
    public long Offset(int index) => offsets[index];

    /// <summary>
    /// Parameters <paramref name="first"/> .. <paramref name="first"/> + <paramref name="count"/> − 1 as a buffer of their
    /// own: the same memory, nothing copied (the new buffer's <see cref="Values"/> is a slice of this one's).
    /// </summary>
    public ParameterBuffer Slice(int first, int count)
    {
        if (first < 0 || count <= 0 || first + count > parameters.Length)
            throw new ArgumentOutOfRangeException(nameof(count), $"parameters {first}..{first + count - 1} of {parameters.Length}");
        var slice = parameters[first..(first + count)];
        var values = Values.narrow(0, offsets[first], offsets[first + count] - offsets[first]).DetachFromDisposeScope();
        return new ParameterBuffer(slice, OffsetsOf(slice), values);
    }

    /// <summary>
    /// Gives every parameter a gradient that is a view of the new flat <see cref="Gradients"/> tensor (an existing
    /// gradient's values are kept), so backward accumulates straight into it. Called once; the optimisers do it.
    /// </summary>
    public Tensor AttachGradients()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (Gradients is not null) return Gradients;
        var gradients = zeros(Count, dtype: Values.dtype, device: Values.device).DetachFromDisposeScope();
        gradientViews = new Tensor[parameters.Length];
        using (no_grad())
        {
            for (int i = 0; i < parameters.Length; i++)
            {
                var p = parameters[i];
                gradientViews[i] = gradients.narrow(0, offsets[i], p.numel()).view(p.shape).DetachFromDisposeScope();
                using var existing = p.grad;
                if (existing is not null) gradientViews[i].copy_(existing);
                p.grad = gradientViews[i];
            }
        }
        Gradients = gradients;
        return gradients;
    }

    /// <summary>The flat gradient tensor of <see cref="AttachGradients"/>; null before.</summary>
    public Tensor? Gradients { get; private set; }

    /// <summary>
    /// Makes sure every gradient is its view of <see cref="Gradients"/> and returns that tensor: a gradient that was
    /// replaced by another tensor (e.g. by a data-parallel averager with a buffer of its own) is copied into its slot and
    /// pointed back at it, a missing one is zeros there. A check per parameter, no copy in the usual case.
    /// </summary>
    public Tensor GatherGradients()
    {
        var gradients = Gradients ?? throw new InvalidOperationException("AttachGradients first");
        using var _ = no_grad();
        for (int i = 0; i < parameters.Length; i++)
        {
            using var grad = parameters[i].grad;
            if (grad is not null && TensorMemory.SameMemory(grad, gradientViews![i])) continue;
            if (grad is null) gradientViews![i].zero_();
            else gradientViews![i].copy_(grad);
            parameters[i].grad = gradientViews[i];
        }
        return gradients;
    }

    /// <summary>Zeroes <see cref="Gradients"/> with one kernel (after pointing every gradient back at it).</summary>
    public void ZeroGradients()
    {
        var gradients = Gradients ?? throw new InvalidOperationException("AttachGradients first");
        using var _ = no_grad();
        for (int i = 0; i < parameters.Length; i++)
        {
            using var grad = parameters[i].grad;
            if (grad is null || !TensorMemory.SameMemory(grad, gradientViews![i])) parameters[i].grad = gradientViews![i];
        }
        gradients.zero_();
    }

    /// <summary>View of parameter <paramref name="index"/>'s slice of <paramref name="flat"/> (a tensor laid out as <see cref="Values"/>).</summary>
    public Tensor ViewOf(Tensor flat, int index) => flat.narrow(0, offsets[index], parameters[index].numel()).view(parameters[index].shape);

    /// <summary>
    /// When the gradients of <paramref name="parameters"/> are already consecutive, contiguous slices of one tensor (a
    /// <see cref="ParameterBuffer"/>'s <see cref="Gradients"/>: in order, with no more than the alignment padding
    /// between them), a flat tensor from the first one's start to the last one's end; otherwise null.
    /// For a data-parallel averager that should reduce the optimiser's gradient buffer in place rather than a copy of it.
    /// </summary>
    public static Tensor? FlatGradientsOf(IReadOnlyList<Parameter> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Count == 0) return null;
        using var scope = NewDisposeScope();
        var first = parameters[0].grad;
        if (first is null || !first.is_contiguous()) return null;
        var (storage, start) = (TensorMemory.StorageAddress(first), first.storage_offset());
        long offset = 0;
        foreach (var p in parameters)
        {
            var grad = p.grad;
            // In order, each after the previous one's end with at most the alignment padding between them.
            long at = grad is null ? -1 : grad.storage_offset() - start;
            if (grad is null || grad.dtype != first.dtype || grad.device_type != first.device_type || !grad.is_contiguous()
                || grad.numel() != p.numel() || at < offset || at >= offset + Alignment || TensorMemory.StorageAddress(grad) != storage)
                return null;
            offset = at + p.numel();
        }
        // Every slice lies in first's storage, so the span does too (as_strided checks the bounds all the same).
        return first.as_strided([offset], [1], start).DetachFromDisposeScope();
    }

    private static long[] OffsetsOf(Parameter[] list)
    {
        var offsets = new long[list.Length + 1];
        for (int i = 0; i < list.Length; i++) offsets[i + 1] = (offsets[i] + list[i].numel() + Alignment - 1) / Alignment * Alignment;
        return offsets;
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (gradientViews is not null) foreach (var v in gradientViews) v.Dispose();
        Gradients?.Dispose();
        Values.Dispose(); // a slice's values are a view: disposing it frees only the view
    }
}

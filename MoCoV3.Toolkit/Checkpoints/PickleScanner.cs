using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace MoCoV3.Checkpoints;

/// <summary>
/// Walks the opcodes of a <c>torch.save</c> <c>data.pkl</c> before anything unpickles it, on a symbolic stack of its
/// own, and refuses the file unless it only builds what a checkpoint needs: None, booleans, numbers, strings, bytes,
/// tuples, lists, dicts, sets, and tensors rebuilt from storages of the archive. Checked, with the byte offset of the
/// opcode in every refusal:
/// <list type="bullet">
/// <item>every <c>GLOBAL</c>/<c>STACK_GLOBAL</c>/<c>INST</c> names an allowed <c>module.name</c> (<see cref="AllowedGlobals"/>);
/// extension codes, out-of-band buffers and text persistent ids are refused;</item>
/// <item>every length field fits in the bytes left, so nothing is allocated from a size the file merely claims;</item>
/// <item>every persistent id is <c>('storage', torch.XStorage, key, location, numel)</c> whose archive entry exists and holds
/// exactly <c>numel</c> elements;</item>
/// <item>every <c>_rebuild_tensor_v2</c> asks for a contiguous tensor at storage offset 0 that fits in its storage (the
/// reader rebuilds a tensor from the first bytes of its storage, so a view elsewhere would load wrong values), and all
/// tensors together stay under a byte budget;</item>
/// <item>containers nest at most <see cref="MaxNesting"/> deep, so code walking the result cannot overflow the stack.</item>
/// </list>
/// Why by hand: TorchSharp.PyBridge's unpickler (Razorvine.Pickle) has no allow-list hook. Its constructor registry is a
/// process-wide static table, and any name not in it becomes a <c>ClassDictConstructor</c>, so a hostile <c>GLOBAL</c>
/// is not refused but carried along (no Python runs in .NET, and a REDUCE of an unknown class with arguments throws,
/// but length fields are trusted and allocated before they are read).
/// </summary>
internal static class PickleScanner
{
    /// <summary>Deeper nesting than this is refused (a state dict nests 3 or 4 levels).</summary>
    public const int MaxNesting = 100;

    /// <summary>The callables a checkpoint's pickle may reference.</summary>
    public static IReadOnlySet<string> AllowedGlobals { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "collections.OrderedDict",
    };

    /// <summary>The storage classes of persistent ids, with their element sizes.</summary>
    public static IReadOnlyDictionary<string, int> StorageElementSizes { get; } = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["torch.DoubleStorage"] = 8, ["torch.FloatStorage"] = 4, ["torch.HalfStorage"] = 2, ["torch.BFloat16Storage"] = 2,
        ["torch.LongStorage"] = 8, ["torch.IntStorage"] = 4, ["torch.ShortStorage"] = 2, ["torch.CharStorage"] = 1,
        ["torch.ByteStorage"] = 1, ["torch.BoolStorage"] = 1, ["torch.ComplexDoubleStorage"] = 16,
        ["torch.ComplexFloatStorage"] = 8,
    };

    /// <summary>Checks <paramref name="pickle"/>; throws an <see cref="InvalidDataException"/> naming <paramref name="file"/> and the offset.</summary>
    /// <param name="file">The checkpoint, for messages.</param>
    /// <param name="pickle">The bytes of <c>data.pkl</c>.</param>
    /// <param name="storageBytes">The uncompressed length of the archive entry the reader would take for a storage key, or null when there is none.</param>
    /// <param name="maxTensorBytes">The most bytes all rebuilt tensors together may take.</param>
    public static void Check(string file, ReadOnlySpan<byte> pickle, Func<string, long?> storageBytes, long maxTensorBytes)
    {
        var scan = new Scan(file, storageBytes, maxTensorBytes);
        scan.Run(pickle);
    }

    private sealed record Global(string Name);

    private sealed record Storage(string Key, long Elements, int ElementSize);

    private sealed record Tensor(long Bytes);

    /// <summary>A value that is not inspected further (a float, a big integer, bytes, a built object).</summary>
    private sealed record Opaque(string What);

    private sealed class Container(string kind)
    {
        public string Kind { get; } = kind;
        public List<object?> Items { get; } = [];
    }

    private sealed class Mark
    {
        public static readonly Mark Instance = new();
    }

    private sealed class Scan(string file, Func<string, long?> storageBytes, long maxTensorBytes)
    {
        private readonly List<object?> stack = [];
        private readonly Dictionary<long, object?> memo = [];
        private long tensorBytes;
        private int at;

        public void Run(ReadOnlySpan<byte> data)
        {
            int pos = 0;
            while (true)
            {
                if (pos >= data.Length) throw Error(pos, "expected the STOP opcode, found the end of data.pkl (truncated)");
                at = pos;
                byte op = data[pos++];
                switch (op)
                {
                    case 0x80: // PROTO
                        byte protocol = Fixed(data, ref pos, 1)[0];
                        if (protocol > 5) throw Error(at, $"pickle protocol {protocol}, expected 2 to 5");
                        break;
                    case 0x95: // FRAME
                        Fixed(data, ref pos, 8);
                        break;
                    case (byte)'.': // STOP
                        CheckNesting(Pop());
                        return;
                    case (byte)'(': Push(Mark.Instance); break;
                    case (byte)'0': Pop(); break;
                    case (byte)'1': PopMark(); break;
                    case (byte)'2': Push(Peek()); break;
                    case (byte)'N': Push(null); break;
                    case 0x88: Push(true); break;
                    case 0x89: Push(false); break;
                    case (byte)'I': Push(ParseInt(Line(data, ref pos))); break;
                    case (byte)'L': Push(ParseInt(Line(data, ref pos).TrimEnd('L'))); break;
                    case (byte)'F': Line(data, ref pos); Push(new Opaque("float")); break;
                    case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Fixed(data, ref pos, 4))); break;
                    case (byte)'K': Push((long)Fixed(data, ref pos, 1)[0]); break;
                    case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Fixed(data, ref pos, 2))); break;
                    case (byte)'G': Fixed(data, ref pos, 8); Push(new Opaque("float")); break;
                    case 0x8a: Push(LongBytes(Sized(data, ref pos, 1))); break;
                    case 0x8b: Push(LongBytes(Sized(data, ref pos, 4))); break;
                    case (byte)'S': Push(Line(data, ref pos).Trim('\'', '"')); break;
                    case (byte)'V': Push(Line(data, ref pos)); break;
                    case (byte)'T': Push(Text(Sized(data, ref pos, 4))); break;
                    case (byte)'U': Push(Text(Sized(data, ref pos, 1))); break;
                    case (byte)'X': Push(Text(Sized(data, ref pos, 4))); break;
                    case 0x8c: Push(Text(Sized(data, ref pos, 1))); break;
                    case 0x8d: Push(Text(Sized(data, ref pos, 8))); break;
                    case (byte)'B': Sized(data, ref pos, 4); Push(new Opaque("bytes")); break;
                    case (byte)'C': Sized(data, ref pos, 1); Push(new Opaque("bytes")); break;
                    case 0x8e: Sized(data, ref pos, 8); Push(new Opaque("bytes")); break;
                    case 0x96: Sized(data, ref pos, 8); Push(new Opaque("bytearray")); break;
                    case (byte)')': Push(new Container("tuple")); break;
                    case (byte)']': Push(new Container("list")); break;
                    case (byte)'}': Push(new Container("dict")); break;
                    case 0x8f: Push(new Container("set")); break;
                    case (byte)'t': Push(FromMark("tuple")); break;
                    case (byte)'l': Push(FromMark("list")); break;
                    case (byte)'d': Push(FromMark("dict")); break;
                    case 0x91: Push(FromMark("frozenset")); break;
                    case 0x85: Push(Tuple(1)); break;
                    case 0x86: Push(Tuple(2)); break;
                    case 0x87: Push(Tuple(3)); break;
                    case (byte)'a':
                        {
                            object? item = Pop();
                            AddTo(Expect("list"), item);
                            break;
                        }
                    case (byte)'e': AddManyTo("list"); break;
                    case 0x90: AddManyTo("set"); break;
                    case (byte)'s':
                        {
                            object? value = Pop();
                            object? key = Pop();
                            var dict = Expect("dict");
                            AddTo(dict, key);
                            AddTo(dict, value);
                            break;
                        }
                    case (byte)'u': AddManyTo("dict"); break;
                    case (byte)'p': Memo(ParseInt(Line(data, ref pos))); break;
                    case (byte)'q': Memo(Fixed(data, ref pos, 1)[0]); break;
                    case (byte)'r': Memo(BinaryPrimitives.ReadUInt32LittleEndian(Fixed(data, ref pos, 4))); break;
                    case 0x94: Memo(memo.Count); break;
                    case (byte)'g': Push(Recall(ParseInt(Line(data, ref pos)))); break;
                    case (byte)'h': Push(Recall(Fixed(data, ref pos, 1)[0])); break;
                    case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(Fixed(data, ref pos, 4)))); break;
                    case (byte)'c': // GLOBAL
                        {
                            string module = Line(data, ref pos);
                            string name = Line(data, ref pos);
                            Push(Allow("GLOBAL", module, name));
                            break;
                        }
                    case 0x93: // STACK_GLOBAL
                        {
                            object? name = Pop();
                            object? module = Pop();
                            if (module is not string m || name is not string n)
                                throw Error(at, "expected STACK_GLOBAL to take a module and a name string from the stack");
                            Push(Allow("STACK_GLOBAL", m, n));
                            break;
                        }
                    case (byte)'i': // INST: module and class inline, arguments from the mark
                        {
                            string module = Line(data, ref pos);
                            string name = Line(data, ref pos);
                            Allow("INST", module, name);
                            PopMark();
                            Push(new Opaque($"{module}.{name}"));
                            break;
                        }
                    case (byte)'o': // OBJ: class and arguments from the mark
                        {
                            var items = PopMark();
                            if (items.Count == 0 || items[0] is not Global) throw Error(at, "expected OBJ to find a class after the mark");
                            Push(new Opaque(((Global)items[0]!).Name));
                            break;
                        }
                    case (byte)'R': Reduce("REDUCE"); break;
                    case 0x81: Reduce("NEWOBJ"); break;
                    case 0x92:
                        Pop(); // keyword arguments
                        Reduce("NEWOBJ_EX");
                        break;
                    case (byte)'b': // BUILD: the state goes to the object's __setstate__
                        Pop();
                        Peek();
                        break;
                    case (byte)'Q': Push(PersistentId(Pop())); break;
                    case (byte)'P':
                        throw Error(at, "refused PERSID: a torch.save pickle names its storages with BINPERSID tuples");
                    case 0x82:
                    case 0x83:
                    case 0x84:
                        throw Error(at, "refused EXT1/EXT2/EXT4: extension codes name arbitrary callables");
                    case 0x97:
                    case 0x98:
                        throw Error(at, "refused NEXT_BUFFER/READONLY_BUFFER: a checkpoint has no out-of-band buffers");
                    default:
                        throw Error(at, $"unknown pickle opcode 0x{op:X2}");
                }
            }
        }

        private InvalidDataException Error(long offset, string detail) =>
            new($"{file}: data.pkl at byte {offset}: {detail}");

        private Global Allow(string opcode, string module, string name)
        {
            string full = $"{module}.{name}";
            if (!AllowedGlobals.Contains(full) && !StorageElementSizes.ContainsKey(full))
                throw Error(at, $"refused {opcode} '{Printable(full)}': a checkpoint may only reference " +
                                $"{string.Join(", ", AllowedGlobals)} and the torch.*Storage classes; nothing was unpickled");
            return new Global(full);
        }

        private void Reduce(string opcode)
        {
            object? args = Pop();
            object? callable = Pop();
            if (callable is not Global global)
                throw Error(at, $"expected {opcode} to call an allowed global, found {Describe(callable)}");
            if (args is not Container { Kind: "tuple" } tuple)
                throw Error(at, $"expected {opcode} of {global.Name} to take an argument tuple, found {Describe(args)}");
            if (StorageElementSizes.ContainsKey(global.Name))
                throw Error(at, $"refused {opcode} of {global.Name}: storages come from persistent ids, not calls");
            Push(global.Name switch
            {
                "torch._utils._rebuild_tensor" or "torch._utils._rebuild_tensor_v2" => RebuildTensor(global.Name, tuple.Items),
                "torch._utils._rebuild_parameter" => tuple.Items.Count > 0 && tuple.Items[0] is Tensor t ? t
                    : throw Error(at, "expected _rebuild_parameter to wrap a tensor"),
                _ => new Container("dict"), // collections.OrderedDict()
            });
        }

        private Tensor RebuildTensor(string name, List<object?> args)
        {
            if (args.Count < 4 || args[0] is not Storage storage || args[1] is not long offset ||
                args[2] is not Container { Kind: "tuple" } size || args[3] is not Container { Kind: "tuple" } stride)
                throw Error(at, $"expected {name}(storage, offset, size tuple, stride tuple, …), found ({string.Join(", ", args.Take(4).Select(Describe))})");
            if (size.Items.Count != stride.Items.Count || size.Items.Count > 64)
                throw Error(at, $"expected as many strides as sizes (at most 64), found {size.Items.Count} sizes and {stride.Items.Count} strides");
            var sizes = size.Items.Select(s => s is long v and >= 0 and <= int.MaxValue ? v : -1).ToArray();
            var strides = stride.Items.Select(s => s is long v and >= 0 and <= int.MaxValue ? v : -1).ToArray();
            if (sizes.Contains(-1) || strides.Contains(-1))
                throw Error(at, $"expected sizes and strides in 0..{int.MaxValue}, found [{string.Join(",", size.Items.Select(Describe))}] " +
                                $"and [{string.Join(",", stride.Items.Select(Describe))}]");
            long elements = 1;
            foreach (long s in sizes)
            {
                elements = s == 0 || elements == 0 ? 0 : elements * s;
                if (elements > storage.Elements)
                    throw Error(at, $"the tensor's size [{string.Join(",", sizes)}] needs more than the {storage.Elements} elements of storage '{storage.Key}'");
            }
            long expected = 1;
            for (int d = sizes.Length - 1; d >= 0; d--)
            {
                if (sizes[d] != 1 && strides[d] != expected)
                    throw Error(at, $"refused a non-contiguous tensor (size [{string.Join(",", sizes)}], stride [{string.Join(",", strides)}]): this reader rebuilds tensors from the start of their storage");
                expected *= sizes[d];
            }
            if (offset != 0 && elements > 0)
                throw Error(at, $"refused a tensor at storage offset {offset} of storage '{storage.Key}': this reader rebuilds tensors from the start of their storage");
            long bytes = elements * storage.ElementSize;
            tensorBytes += bytes;
            if (tensorBytes > maxTensorBytes)
                throw Error(at, $"the tensors rebuilt so far take {tensorBytes} bytes, more than the {maxTensorBytes} this file can account for");
            return new Tensor(bytes);
        }

        private Storage PersistentId(object? pid)
        {
            if (pid is not Container { Kind: "tuple" } tuple || tuple.Items.Count != 5 || tuple.Items[0] is not "storage" ||
                tuple.Items[1] is not Global type || tuple.Items[2] is not string key || tuple.Items[4] is not long elements)
                throw Error(at, $"expected a persistent id ('storage', torch.XStorage, key, location, numel), found {Describe(pid)}");
            if (!StorageElementSizes.TryGetValue(type.Name, out int elementSize))
                throw Error(at, $"expected a torch.*Storage class in the persistent id, found {type.Name}");
            if (key.Length == 0 || key.Length > 64 || !key.All(char.IsAsciiLetterOrDigit))
                throw Error(at, $"expected a storage key of letters and digits, found '{Printable(key)}'");
            long? length = storageBytes(key);
            if (length is null)
                throw Error(at, $"storage '{key}' has no entry data/{key} in the archive");
            if (elements < 0 || elements > length / elementSize || elements * elementSize != length)
                throw Error(at, $"storage '{key}' claims {elements} elements of {elementSize} bytes, its archive entry holds {length} bytes");
            return new Storage(key, elements, elementSize);
        }

        private void Push(object? value)
        {
            stack.Add(value);
        }

        private object? Pop()
        {
            if (stack.Count == 0 || stack[^1] is Mark) throw Error(at, "expected a value on the pickle stack, found none");
            object? value = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return value;
        }

        private object? Peek()
        {
            if (stack.Count == 0 || stack[^1] is Mark) throw Error(at, "expected a value on the pickle stack, found none");
            return stack[^1];
        }

        private List<object?> PopMark()
        {
            int mark = stack.FindLastIndex(v => v is Mark);
            if (mark < 0) throw Error(at, "expected a MARK on the pickle stack, found none");
            var items = stack.GetRange(mark + 1, stack.Count - mark - 1);
            stack.RemoveRange(mark, stack.Count - mark);
            return items;
        }

        private Container FromMark(string kind)
        {
            var container = new Container(kind);
            foreach (object? item in PopMark()) AddTo(container, item);
            return container;
        }

        private Container Tuple(int count)
        {
            var items = new object?[count];
            for (int i = count - 1; i >= 0; i--) items[i] = Pop();
            var tuple = new Container("tuple");
            foreach (object? item in items) AddTo(tuple, item);
            return tuple;
        }

        private Container Expect(string kind)
        {
            object? target = Peek();
            if (target is not Container container || container.Kind != kind)
                throw Error(at, $"expected a {kind} on the pickle stack, found {Describe(target)}");
            return container;
        }

        private void AddManyTo(string kind)
        {
            var items = PopMark();
            var target = Expect(kind);
            foreach (object? item in items) AddTo(target, item);
        }

        private static void AddTo(Container container, object? item) => container.Items.Add(item);

        private void Memo(long index)
        {
            if (index < 0) throw Error(at, $"expected a memo index of 0 or more, found {index}");
            memo[index] = Peek();
        }

        private object? Recall(long index) =>
            memo.TryGetValue(index, out object? value) ? value : throw Error(at, $"expected memo entry {index}, found none");

        /// <summary>Refuses containers nested deeper than <see cref="MaxNesting"/>, looking at what the pickle built.</summary>
        private void CheckNesting(object? result)
        {
            var depth = new Dictionary<Container, int>(ReferenceEqualityComparer.Instance);
            var roots = memo.Values.Concat(stack).Append(result).OfType<Container>().ToList();
            foreach (var root in roots)
            {
                // Iterative post-order walk; a container met again on the current path (a cycle) counts as depth 0.
                var path = new HashSet<Container>(ReferenceEqualityComparer.Instance);
                var work = new Stack<(Container Node, int Next)>();
                if (depth.ContainsKey(root)) continue;
                work.Push((root, 0));
                path.Add(root);
                while (work.Count > 0)
                {
                    var (node, next) = work.Pop();
                    if (next < node.Items.Count)
                    {
                        work.Push((node, next + 1));
                        if (node.Items[next] is Container child && !depth.ContainsKey(child) && path.Add(child))
                        {
                            if (path.Count > MaxNesting)
                                throw Error(at, $"containers nest more than {MaxNesting} deep");
                            work.Push((child, 0));
                        }
                        continue;
                    }
                    int d = 1 + node.Items.OfType<Container>().Select(c => depth.GetValueOrDefault(c)).DefaultIfEmpty(0).Max();
                    if (d > MaxNesting) throw Error(at, $"containers nest more than {MaxNesting} deep");
                    depth[node] = d;
                    path.Remove(node);
                }
            }
        }

        private ReadOnlySpan<byte> Fixed(ReadOnlySpan<byte> data, ref int pos, int count)
        {
            if (count > data.Length - pos)
                throw Error(at, $"expected {count} argument bytes after the opcode, found {data.Length - pos} (truncated)");
            var bytes = data.Slice(pos, count);
            pos += count;
            return bytes;
        }

        /// <summary>A length field of <paramref name="width"/> bytes and the bytes it announces, which must be there.</summary>
        private ReadOnlySpan<byte> Sized(ReadOnlySpan<byte> data, ref int pos, int width)
        {
            var field = Fixed(data, ref pos, width);
            ulong length = width switch
            {
                1 => field[0],
                4 => BinaryPrimitives.ReadUInt32LittleEndian(field),
                _ => BinaryPrimitives.ReadUInt64LittleEndian(field),
            };
            if (length > (ulong)(data.Length - pos))
                throw Error(at, $"a length field announces {length} bytes, only {data.Length - pos} are left in data.pkl");
            return Fixed(data, ref pos, (int)length);
        }

        private string Line(ReadOnlySpan<byte> data, ref int pos)
        {
            int end = data[pos..].IndexOf((byte)'\n');
            if (end < 0) throw Error(at, "expected a newline-terminated argument, found the end of data.pkl");
            string text = Text(data.Slice(pos, end));
            pos += end + 1;
            return text;
        }

        private string Text(ReadOnlySpan<byte> bytes)
        {
            try
            {
                return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                throw Error(at, "expected a UTF-8 string, found invalid UTF-8");
            }
        }

        private long ParseInt(string text)
        {
            if (text is "00") return 0; // protocol 0's False
            if (text is "01") return 1; // and True
            return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value)
                ? value
                : throw Error(at, $"expected a decimal integer, found '{Printable(text)}'");
        }

        /// <summary>LONG1/LONG4: little-endian two's complement; values beyond 64 bits stay opaque.</summary>
        private static object LongBytes(ReadOnlySpan<byte> bytes)
        {
            if (bytes.Length == 0) return 0L;
            if (bytes.Length > 8) return new Opaque("big integer");
            long value = (sbyte)bytes[^1] < 0 ? -1L : 0L;
            for (int i = bytes.Length - 1; i >= 0; i--) value = (value << 8) | bytes[i];
            return value;
        }

        private static string Describe(object? value) => value switch
        {
            null => "None",
            string s => $"'{Printable(s)}'",
            long l => l.ToString(CultureInfo.InvariantCulture),
            bool b => b ? "True" : "False",
            Container c => $"a {c.Kind} of {c.Items.Count}",
            Global g => g.Name,
            Storage s => $"storage '{s.Key}'",
            Tensor => "a tensor",
            Opaque o => $"a {o.What}",
            _ => value.GetType().Name,
        };

        private static string Printable(string text)
        {
            string shown = text.Length > 80 ? text[..80] + "…" : text;
            return new string(shown.Select(c => char.IsControl(c) ? '?' : c).ToArray());
        }
    }
}

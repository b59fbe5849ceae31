%% Erlang/OTP peer of the Axon benchmark suite (Savina workloads).
%%
%% Compile:  erlc -o OUTDIR axbench.erl
%% Run:      erl -noshell +S 2:2 +P 4194304 -pa OUTDIR -s axbench main NAME PARAMS...
%%           (+S = schedulers = number of cores; +P lifts the default limit
%%           of 262144 processes for footprint's 1M; `-s` passes the arguments
%%           as atoms; main/1 also accepts strings, so an escript works too.)
%%
%% Prints exactly one line on stdout:
%%   RESULT <name> erlang <wall_seconds> <ops> <ops_per_second> <unit>[ key=value...]
%% Every workload checks its own result and halts with status 1 and a
%% message on stderr when the check fails. wall_seconds excludes VM start.
%%
%% Pitfall handled: the emulator scans the whole message queue of a process
%% on every GC of that process, so each flooded receiver (count's counter,
%% fjthrput's actors, the fjcreate and footprint collectors) is spawned with
%% {message_queue_data, off_heap}.
-module(axbench).
-export([main/1]).

main([Name | Params]) ->
    %% The workload runs in its own process, monitored here: a check that
    %% fails, or any crash of it or of a process linked to it, halts the VM
    %% with status 1 instead of leaving it hanging.
    {Pid, Ref} = spawn_monitor(fun() -> runner(to_list(Name), Params) end),
    receive
        {'DOWN', Ref, process, Pid, normal} ->
            halt(0);
        {'DOWN', Ref, process, Pid, Reason} ->
            io:format(standard_error, "axbench erlang: crashed: ~p~n", [Reason]),
            halt(1)
    end;
main([]) ->
    io:format(standard_error, "usage: axbench NAME [PARAMS...]~n", []),
    halt(2).

runner(N, Params) ->
    try
        Ps = [case string:to_integer(to_list(P)) of
                  {I, []} when I > 0 -> I;
                  _ -> fail("bad parameter '~s'", [to_list(P)])
              end || P <- Params],
        run(N, Ps)
    of
        ok -> ok
    catch
        throw:{fail, Msg} ->
            io:format(standard_error, "axbench erlang: ~s~n", [Msg]),
            halt(1);
        C:R:St ->
            io:format(standard_error, "axbench erlang: ~p:~p~n~p~n", [C, R, St]),
            halt(1)
    end.

to_list(A) when is_atom(A) -> atom_to_list(A);
to_list(L) when is_list(L) -> L.

param(Ps, I, _Def) when length(Ps) >= I -> lists:nth(I, Ps);
param(_, _, Def) -> Def.

run("pingpong", Ps)   -> pingpong(param(Ps, 1, 3000000));
run("count", Ps)      -> count(param(Ps, 1, 15000000));
run("fjthrput", Ps)   -> fjthrput(param(Ps, 1, 60), param(Ps, 2, 200000));
run("fjcreate", Ps)   -> fjcreate(param(Ps, 1, 1000000));
run("threadring", Ps) -> threadring(param(Ps, 1, 503), param(Ps, 2, 10000000));
run("chameneos", Ps)  -> chameneos(param(Ps, 1, 100), param(Ps, 2, 2000000));
run("big", Ps)        -> big(param(Ps, 1, 120), param(Ps, 2, 50000));
run("footprint", Ps)  -> footprint(param(Ps, 1, 1000000));
run("latency", Ps)    -> latency(param(Ps, 1, 1000000));
run("pingpong_x", Ps) -> pingpong_x(param(Ps, 1, 4), param(Ps, 2, 500000));
run("latency_x", Ps)  -> latency_x(param(Ps, 1, 200000));
run(Other, _) ->
    io:format(standard_error, "axbench erlang: unknown workload ~s~n", [Other]),
    halt(2).

fail(Fmt, Args) -> throw({fail, lists:flatten(io_lib:format(Fmt, Args))}).

%% Workers that fail call this: it ends the whole VM (a check failed).
die(Fmt, Args) ->
    io:format(standard_error, "axbench erlang: " ++ Fmt ++ "~n", Args),
    halt(1).

now_ns() -> erlang:monotonic_time(nanosecond).

secs(T0) -> (now_ns() - T0) / 1.0e9.

result(Name, Wall, Ops, Unit, Extra) ->
    ExtraStr = lists:flatten([[" ", E] || E <- Extra]),
    io:format("RESULT ~s erlang ~.6f ~B ~.1f ~s~s~n",
              [Name, Wall, Ops, Ops / Wall, Unit, ExtraStr]),
    ok.

flood_opts() -> [link, {message_queue_data, off_heap}].

%% -------------------------------------------------------------- pingpong

pingpong(N) ->
    Main = self(),
    T0 = now_ns(),
    Pong = spawn_link(fun pong_loop/0),
    spawn_link(fun() -> Pong ! {ping, self(), 0}, ping_loop(Pong, N, 0, Main) end),
    Trips = receive {done, T} -> T end,
    Wall = secs(T0),
    Trips =:= N orelse fail("pingpong: ~B round trips, expected ~B", [Trips, N]),
    result("pingpong", Wall, 2 * N, "msgs", []).

pong_loop() ->
    receive
        {ping, From, V} -> From ! {pong, V}, pong_loop();
        stop -> ok
    end.

ping_loop(Pong, N, Trips, Main) ->
    receive
        {pong, V} ->
            V =:= Trips orelse die("pingpong: got ~B, expected ~B", [V, Trips]),
            T1 = Trips + 1,
            case T1 of
                N -> Pong ! stop, Main ! {done, T1};
                _ -> Pong ! {ping, self(), T1}, ping_loop(Pong, N, T1, Main)
            end
    end.

%% ----------------------------------------------------------------- count

count(N) ->
    Main = self(),
    T0 = now_ns(),
    Counter = spawn_opt(fun() -> counter_loop(0) end, flood_opts()),
    spawn_link(fun() ->
                       produce(Counter, N),
                       Counter ! {get, self()},
                       receive {total, Tot} -> Main ! {done, Tot} end
               end),
    Total = receive {done, X} -> X end,
    Wall = secs(T0),
    Total =:= N orelse fail("count: total ~B, expected ~B", [Total, N]),
    result("count", Wall, N, "msgs", []).

produce(_, 0) -> ok;
produce(C, K) -> C ! inc, produce(C, K - 1).

counter_loop(C) ->
    receive
        inc -> counter_loop(C + 1);
        {get, From} -> From ! {total, C}
    end.

%% -------------------------------------------------------------- fjthrput

%% Savina's performComputation: sin(theta)^2.
compute(Theta) -> S = math:sin(Theta), S * S.

fjthrput(A, N) ->
    Main = self(),
    T0 = now_ns(),
    Workers = [spawn_opt(fun() -> fj_loop(Main, 0, 0.0) end, flood_opts())
               || _ <- lists:seq(1, A)],
    spawn_link(fun() -> fj_produce(Workers, N), [W ! stop || W <- Workers] end),
    Bad = collect_fj(A, N, none),
    Wall = secs(T0),
    Bad =:= none orelse fail("fjthrput: an actor got ~B messages, expected ~B", [Bad, N]),
    result("fjthrput", Wall, A * N, "msgs", []).

fj_produce(_, 0) -> ok;
fj_produce(Ws, K) -> fj_send(Ws), fj_produce(Ws, K - 1).

fj_send([]) -> ok;
fj_send([W | Ws]) -> W ! msg, fj_send(Ws).

fj_loop(Main, Got, Sum) ->
    receive
        msg -> fj_loop(Main, Got + 1, Sum + compute(37.2));
        stop -> Main ! {fj, Got, Sum}
    end.

collect_fj(0, _, Bad) -> Bad;
collect_fj(K, N, Bad) ->
    receive
        {fj, N, Sum} when Sum > 0 -> collect_fj(K - 1, N, Bad);
        {fj, Got, _} -> collect_fj(K - 1, N, Got)
    end.

%% -------------------------------------------------------------- fjcreate

fjcreate(N) ->
    Main = self(),
    T0 = now_ns(),
    Collector = spawn_opt(fun() -> fjc_collect(Main, N, 0) end, flood_opts()),
    spawn_link(fun() -> fjc_spawn(Collector, N) end),
    Got = receive {done, G} -> G end,
    Wall = secs(T0),
    Got =:= N orelse fail("fjcreate: collector got ~B replies, expected ~B", [Got, N]),
    result("fjcreate", Wall, N, "actors", []).

fjc_spawn(_, 0) -> ok;
fjc_spawn(Collector, K) ->
    Pid = spawn(fun fjc_worker/0),
    Pid ! {compute, Collector, 37.2},
    fjc_spawn(Collector, K - 1).

fjc_worker() ->
    receive {compute, Collector, Theta} -> Collector ! {reply, compute(Theta)} end.

fjc_collect(Main, N, N) -> Main ! {done, N};
fjc_collect(Main, N, Got) ->
    receive
        {reply, V} when V > 0 -> fjc_collect(Main, N, Got + 1);
        {reply, V} -> die("fjcreate: bad reply ~p", [V])
    end.

%% ------------------------------------------------------------ threadring

threadring(R, H) ->
    Main = self(),
    T0 = now_ns(),
    Ring = [spawn_link(fun() -> ring_init(Id, Main) end) || Id <- lists:seq(0, R - 1)],
    [First | _] = Ring,
    Nexts = tl(Ring) ++ [First],
    [P ! {next, Nx} || {P, Nx} <- lists:zip(Ring, Nexts)],
    First ! {token, H},
    Last = receive {done, Id} -> Id end,
    Wall = secs(T0),
    [P ! stop || P <- Ring],
    Last =:= H rem R orelse
        fail("threadring: token stopped at actor ~B, expected ~B", [Last, H rem R]),
    result("threadring", Wall, H, "hops", []).

ring_init(Id, Main) ->
    receive {next, Next} -> ring_loop(Id, Next, Main) end.

ring_loop(Id, Next, Main) ->
    receive
        {token, 0} -> Main ! {done, Id}, ring_loop(Id, Next, Main);
        {token, V} -> Next ! {token, V - 1}, ring_loop(Id, Next, Main);
        stop -> ok
    end.

%% ------------------------------------------------------------- chameneos
%% Savina chameneos: every chameneo sends {meet, Colour, Self} to the mall;
%% the mall keeps the first arrival waiting and forwards the second one's
%% meet message to it; the waiting one complements its colour, tells its
%% partner the new colour ({change, C}), and both go back to the mall. After
%% N meetings the mall answers each arrival with exit; each chameneo reports
%% its meeting count and stops.

complement(C, C) -> C;
complement(blue, red) -> yellow;
complement(blue, yellow) -> red;
complement(red, blue) -> yellow;
complement(red, yellow) -> blue;
complement(yellow, blue) -> red;
complement(yellow, red) -> blue.

chameneos(M, N) ->
    M >= 2 orelse fail("chameneos: needs at least 2 chameneos", []),
    Main = self(),
    T0 = now_ns(),
    Mall = spawn_link(fun() -> mall_loop(Main, M, N, N, none, 0, 0) end),
    Colours = {blue, red, yellow},
    [spawn_link(fun() ->
                        C = element(I rem 3 + 1, Colours),
                        Mall ! {meet, C, self()},
                        cham_loop(Mall, C, 0)
                end) || I <- lists:seq(0, M - 1)],
    {Meetings, Sum} = receive {done, Mt, S} -> {Mt, S} end,
    Wall = secs(T0),
    (Meetings =:= N andalso Sum =:= 2 * N) orelse
        fail("chameneos: mall counted ~B meetings, chameneos ~B, expected ~B and ~B",
             [Meetings, Sum, N, 2 * N]),
    result("chameneos", Wall, N, "meetings", []).

mall_loop(Main, M, N, Left, Waiting, Faded, Sum) ->
    receive
        {count, K} ->
            case Faded + 1 of
                M -> Main ! {done, N - Left, Sum + K};
                F -> mall_loop(Main, M, N, Left, Waiting, F, Sum + K)
            end;
        {meet, _, From} when Left =:= 0 ->
            From ! exit,
            mall_loop(Main, M, N, Left, Waiting, Faded, Sum);
        {meet, _, From} when Waiting =:= none ->
            mall_loop(Main, M, N, Left, From, Faded, Sum);
        {meet, _, _} = Msg ->
            Waiting ! Msg,
            mall_loop(Main, M, N, Left - 1, none, Faded, Sum)
    end.

cham_loop(Mall, Colour, Meetings) ->
    receive
        {meet, Other, From} ->
            C = complement(Colour, Other),
            From ! {change, C},
            Mall ! {meet, C, self()},
            cham_loop(Mall, C, Meetings + 1);
        {change, C} ->
            Mall ! {meet, C, self()},
            cham_loop(Mall, C, Meetings + 1);
        exit ->
            Mall ! {count, Meetings}
    end.

%% ------------------------------------------------------------------- big
%% Each of A actors sends M pings, one at a time, to random other actors and
%% waits for the pong before the next; it keeps answering pings all along.

big(A, M) ->
    A >= 2 orelse fail("big: needs at least 2 actors", []),
    Main = self(),
    T0 = now_ns(),
    Pids = [spawn_link(fun() -> big_init(Id, A, M, Main) end) || Id <- lists:seq(1, A)],
    Tuple = list_to_tuple(Pids),
    [P ! {neighbours, Tuple} || P <- Pids],
    Bad = collect_big(A, M, none),
    Wall = secs(T0),
    [P ! exit || P <- Pids],
    Bad =:= none orelse fail("big: an actor got ~B pongs, expected ~B", [Bad, M]),
    result("big", Wall, 2 * A * M, "msgs", []).

big_init(Id, A, M, Main) ->
    rand:seed(exsss, {Id, 17, 4711}),
    receive {neighbours, Ns} -> ok end,
    big_ping(Id, A, Ns),
    big_loop(Id, A, M, Ns, 0, Main).

big_ping(Id, A, Ns) ->
    T = case rand:uniform(A - 1) of
            X when X >= Id -> X + 1;
            X -> X
        end,
    element(T, Ns) ! {ping, self()}.

big_loop(Id, A, M, Ns, Pongs, Main) ->
    receive
        {ping, From} ->
            From ! pong,
            big_loop(Id, A, M, Ns, Pongs, Main);
        pong ->
            P = Pongs + 1,
            case P of
                M -> Main ! {big, P};
                _ -> big_ping(Id, A, Ns)
            end,
            big_loop(Id, A, M, Ns, P, Main);
        exit ->
            ok
    end.

collect_big(0, _, Bad) -> Bad;
collect_big(K, M, Bad) ->
    receive
        {big, M} -> collect_big(K - 1, M, Bad);
        {big, P} -> collect_big(K - 1, M, P)
    end.

%% ------------------------------------------------------------- footprint
%% Resident memory growth (VmRSS) per idle process, then each is woken with
%% one message, acks to a collector and stops.

vm_rss() ->
    {ok, Bin} = file:read_file("/proc/self/status"),
    [Line] = [L || L <- binary:split(Bin, <<"\n">>, [global]),
                   binary:match(L, <<"VmRSS:">>) =:= {0, 6}],
    [_, Kb | _] = binary:split(Line, [<<" ">>, <<"\t">>], [global, trim_all]),
    binary_to_integer(Kb) * 1024.

footprint(N) ->
    Main = self(),
    garbage_collect(),
    %% The parent (the collector) first: every idle process holds it, and
    %% the pid list built after the first reading counts, as in every peer.
    Collector = spawn_opt(fun() -> fp_collect(Main, N, 0) end, flood_opts()),
    Before = vm_rss(),
    T0 = now_ns(),
    Pids = fp_spawn(N, Collector, []),
    SpawnNs = now_ns() - T0,
    After = vm_rss(),
    T1 = now_ns(),
    [P ! wake || P <- Pids],
    Got = receive {done, G} -> G end,
    WakeNs = now_ns() - T1,
    Got =:= N orelse fail("footprint: ~B acks, expected ~B", [Got, N]),
    Bpa = (After - Before) / N,
    Wall = (SpawnNs + WakeNs) / 1.0e9,
    result("footprint", Wall, N, "actors",
           [io_lib:format("bytes_per_actor=~B", [round(Bpa)]),
            io_lib:format("spawn_s=~.6f", [SpawnNs / 1.0e9]),
            io_lib:format("wake_s=~.6f", [WakeNs / 1.0e9])]).

fp_spawn(0, _Parent, Acc) -> Acc;
fp_spawn(K, Parent, Acc) -> fp_spawn(K - 1, Parent, [spawn(fun() -> fp_idle(Parent) end) | Acc]).

%% An idle process holding its parent's pid (Axon's 8-byte state).
fp_idle(Parent) ->
    receive wake -> Parent ! ack end.

fp_collect(Main, N, N) -> Main ! {done, N};
fp_collect(Main, N, Got) ->
    receive ack -> fp_collect(Main, N, Got + 1) end.

%% --------------------------------------------------------------- latency
%% One message in flight; each round trip timed with the monotonic clock.
%% Percentiles are nearest-rank.

latency(N) ->
    Main = self(),
    T0 = now_ns(),
    Echo = spawn_link(fun echo_loop/0),
    spawn_link(fun() -> Main ! {samples, lat_loop(Echo, N, 0, [])} end),
    Samples = receive {samples, S} -> S end,
    Wall = secs(T0),
    Echo ! stop,
    lat_result("latency", Wall, N, Samples).

%% Prints a latency RESULT line: nearest-rank percentiles of N round-trip
%% samples (ns).
lat_result(Name, Wall, N, Samples) ->
    Sorted = list_to_tuple(lists:sort(Samples)),
    tuple_size(Sorted) =:= N orelse fail("~s: ~B samples, expected ~B",
                                         [Name, tuple_size(Sorted), N]),
    element(1, Sorted) > 0 orelse fail("~s: non-positive round trip", [Name]),
    Pct = fun(P) -> element(max(1, min(N, ceil(P * N))), Sorted) end,
    result(Name, Wall, N, "ns",
           [io_lib:format("p50_ns=~B", [Pct(0.50)]),
            io_lib:format("p99_ns=~B", [Pct(0.99)]),
            io_lib:format("p999_ns=~B", [Pct(0.999)])]).

echo_loop() ->
    receive
        {ping, From, I} -> From ! {pong, I}, echo_loop();
        stop -> ok
    end.

lat_loop(_, N, N, Acc) -> Acc;
lat_loop(Echo, N, I, Acc) ->
    T = erlang:monotonic_time(nanosecond),
    Echo ! {ping, self(), I},
    receive
        {pong, I} -> ok
    end,
    D = erlang:monotonic_time(nanosecond) - T,
    lat_loop(Echo, N, I + 1, [D | Acc]).

%% ------------------------------------------------------ cross-core variants
%% pingpong_x and latency_x: the ends of every pair forced apart, as Axon's
%% two one-worker systems: every ping process is bound to scheduler 1 and
%% every echo to scheduler 2 (spawn_opt's {scheduler, N}), so each hand-off
%% crosses scheduler threads. The run needs +S 2 (axbench_erlang passes
%% +S <cores>).

pingpong_x(P, N) ->
    erlang:system_info(schedulers_online) >= 2 orelse fail("pingpong_x: needs 2 schedulers", []),
    Main = self(),
    T0 = now_ns(),
    [spawn_x_pair(Main, N, false) || _ <- lists:seq(1, P)],
    [receive {done, N, _} -> ok end || _ <- lists:seq(1, P)],
    Wall = secs(T0),
    result("pingpong_x", Wall, 2 * P * N, "msgs", []).

latency_x(N) ->
    erlang:system_info(schedulers_online) >= 2 orelse fail("latency_x: needs 2 schedulers", []),
    Main = self(),
    T0 = now_ns(),
    spawn_x_pair(Main, N, true),
    Samples = receive {done, N, S} -> S end,
    lat_result("latency_x", secs(T0), N, Samples).

%% One pair: the echo on scheduler 2, the pinger on scheduler 1; the pinger
%% sends {done, Trips, Samples} to Main (Samples: [] unless Timed).
spawn_x_pair(Main, N, Timed) ->
    Echo = spawn_opt(fun echo_loop/0, [link, {scheduler, 2}]),
    spawn_opt(fun() -> x_loop(Echo, N, 0, Timed, [], Main) end, [link, {scheduler, 1}]).

x_loop(Echo, N, N, _, Acc, Main) -> Echo ! stop, Main ! {done, N, Acc};
x_loop(Echo, N, I, Timed, Acc, Main) ->
    T = case Timed of true -> erlang:monotonic_time(nanosecond); false -> 0 end,
    Echo ! {ping, self(), I},
    receive
        {pong, V} -> V =:= I orelse die("pingpong_x: got ~B, expected ~B", [V, I])
    end,
    case Timed of
        true -> x_loop(Echo, N, I + 1, Timed, [erlang:monotonic_time(nanosecond) - T | Acc], Main);
        false -> x_loop(Echo, N, I + 1, Timed, Acc, Main)
    end.
